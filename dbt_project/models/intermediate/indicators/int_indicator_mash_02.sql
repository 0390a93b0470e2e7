-- MASH-02: re-referrals (Children in Need census): referrals received in the period within
-- 12 months of a previous referral of the same child, as a percentage of referrals received
-- in the period, with Wilson 95% limits; by ward and district, month and quarter, for all
-- children, by sex and by census age group. Periods start 12 months after the data does, so
-- every referral's previous 12 months are in the data.

with

referrals as (

    select * from {{ ref('int_children_referrals') }} where ward_code is not null

),

coverage as (

    select * from {{ ref('int_source_coverage') }}
    where contract_id = 'county_council__children_social_care_referrals'

),

periods as (

    -- A year of history: 366 days covers any twelve calendar months.
    {{ complete_periods('select first_date, last_date from coverage', lookback_days=366) }}

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
        case when referrals.is_re_referral then 1 else 0 end as in_numerator
    from referrals
    inner join periods
        on referrals.referral_date between periods.period_start and periods.period_end

),

final as (

    {{ indicator_values_from_units('MASH-02', 'units', 'periods', 'wards', breakdowns=[
        {'name': 'sex', 'column': 'sex', 'values': ['M', 'F']},
        {'name': 'age', 'column': 'age_group', 'values': band_labels(children_age_bands())}]) }}

)

select * from final
