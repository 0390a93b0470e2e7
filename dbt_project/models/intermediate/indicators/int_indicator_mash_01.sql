-- MASH-01: children's social care referrals decided within 1 working day of receipt
-- (England and Wales bank holidays and weekends are not working days), as a percentage of
-- referrals received in the period, with Wilson 95% limits; by ward and district, month and
-- quarter, for all children, by sex and by Children in Need census age group.

with

referrals as (

    select * from {{ ref('int_children_referrals') }} where ward_code is not null

),

coverage as (

    select * from {{ ref('int_source_coverage') }}
    where contract_id = 'county_council__children_social_care_referrals'

),

periods as (

    {{ complete_periods('select first_date, last_date from coverage') }}

),

wards as (

    select * from {{ ref('geography_wards') }}

),

units as (

    select
        periods.period_type,
        periods.period_start,
        referrals.ward_code,
        referrals.district_code,
        referrals.sex,
        referrals.age_group,
        case when referrals.decided_within_1_working_day then 1 else 0 end as in_numerator
    from referrals
    inner join periods
        on referrals.referral_date between periods.period_start and periods.period_end

),

final as (

    {{ indicator_values_from_units('MASH-01', 'units', 'periods', 'wards', breakdowns=[
        {'name': 'sex', 'column': 'sex', 'values': ['M', 'F']},
        {'name': 'age', 'column': 'age_group', 'values': band_labels(children_age_bands())}]) }}

)

select * from final
