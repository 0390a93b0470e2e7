-- One long table of every indicator's values: what releases and board packs read.

with

falls_01 as (

    select * from {{ ref('int_indicator_falls_01') }}

),

wards as (

    select * from {{ ref('geography_wards') }}

),

districts as (

    select distinct district_code, district_name from wards

),

indicator_values as (

    select * from falls_01

),

final as (

    select
        indicator_values.indicator_id,
        indicator_values.period_type,
        indicator_values.period_start,
        indicator_values.period_end,
        indicator_values.geography_type,
        indicator_values.geography_code,
        coalesce(wards.ward_name, districts.district_name) as geography_name,
        indicator_values.breakdown,
        cast(indicator_values.numerator as bigint) as numerator,
        cast(indicator_values.denominator as bigint) as denominator,
        indicator_values.value,
        indicator_values.lower_ci,
        indicator_values.upper_ci,
        indicator_values.unit
    from indicator_values
    left join wards
        on indicator_values.geography_type = 'ward' and indicator_values.geography_code = wards.ward_code
    left join districts
        on indicator_values.geography_type = 'district' and indicator_values.geography_code = districts.district_code

)

select * from final
