-- One long table of every indicator's values: what releases and board packs read.

with

falls_01 as (select * from {{ ref('int_indicator_falls_01') }}),

falls_02 as (select * from {{ ref('int_indicator_falls_02') }}),

falls_03 as (select * from {{ ref('int_indicator_falls_03') }}),

falls_04 as (select * from {{ ref('int_indicator_falls_04') }}),

sf_01 as (select * from {{ ref('int_indicator_sf_01') }}),

sf_02 as (select * from {{ ref('int_indicator_sf_02') }}),

mash_01 as (select * from {{ ref('int_indicator_mash_01') }}),

mash_02 as (select * from {{ ref('int_indicator_mash_02') }}),

wards as (

    select * from {{ ref('geography_wards') }}

),

districts as (

    select distinct district_code, district_name from wards

),

indicator_values as (

    select * from falls_01
    union all
    select * from falls_02
    union all
    select * from falls_03
    union all
    select * from falls_04
    union all
    select * from sf_01
    union all
    select * from sf_02
    union all
    select * from mash_01
    union all
    select * from mash_02

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
        -- A rerun must change nothing (release fingerprints are computed from these): the sums
        -- of fractions upstream are exact (exact_sum), so two builds of the same rows give the
        -- same bits; rounded far below any published precision as well, a guard.
        round(indicator_values.value, 10) as value,
        round(indicator_values.lower_ci, 10) as lower_ci,
        round(indicator_values.upper_ci, 10) as upper_ci,
        indicator_values.unit
    from indicator_values
    left join wards
        on indicator_values.geography_type = 'ward' and indicator_values.geography_code = wards.ward_code
    left join districts
        on indicator_values.geography_type = 'district' and indicator_values.geography_code = districts.district_code

)

select * from final
