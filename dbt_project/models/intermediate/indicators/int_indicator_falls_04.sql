-- FALLS-04: Disabled Facilities Grant adaptations completed within 180 days of referral, as a
-- percentage of adaptations completed in the period (by completion date), with Wilson 95%
-- limits, by ward and district, month and quarter, for all ages and by life stage at referral.
-- Periods start a year after the first referral in the snapshot, so that slow cases referred
-- before the data begins cannot be missing from a period's denominator.

with

completed as (

    select * from {{ ref('int_adaptations_completed') }}

),

coverage as (

    select * from {{ ref('int_source_coverage') }}
    where contract_id = 'riverside_council__housing_adaptations'

),

periods as (

    {{ complete_periods('select first_date, last_date from coverage', lookback_days=365) }}

),

wards as (

    select * from {{ ref('geography_wards') }}

),

units as (

    select
        periods.period_type,
        periods.period_start,
        completed.ward_code,
        completed.district_code,
        completed.age_group,
        case when completed.completed_within_target then 1 else 0 end as in_numerator
    from completed
    inner join periods
        on completed.completion_date between periods.period_start and periods.period_end

),

final as (

    {{ indicator_values_from_units('FALLS-04', 'units', 'periods', 'wards',
        breakdowns=[{'name': 'age', 'column': 'age_group', 'values': band_labels(life_stage_age_bands())}]) }}

)

select * from final
