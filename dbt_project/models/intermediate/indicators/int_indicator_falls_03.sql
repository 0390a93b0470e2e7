-- FALLS-03: prevention reach. People aged 65+ who, within 28 days of a first fall, receive a
-- Fire & Rescue safe-and-well visit or are referred to an Age Well falls class (linked across
-- the agencies), as a percentage of people aged 65+ with a first fall in the period, with
-- Wilson 95% limits; by ward and district of the fall, month and quarter, for persons, by sex
-- and by age group. A first fall is one with no fall of the same person in the 365 days
-- before it; periods start a year into the data (so that look-back is observed) and end at
-- least 28 days before the data of every agency involved does.

with

falls as (

    select * from {{ ref('int_falls_episodes') }}

),

reach_events as (

    select person_id, event_date
    from {{ ref('int_person_events') }}
    where person_id is not null
        and (
            event_type = 'safe_and_well_visit'
            or (
                event_type = 'falls_class_referral'
                {%- if var('falls_03_agewell_requires_consent') %} and consent_to_share{% endif %}
            )
        )

),

coverage as (

    select max(first_date) as first_date, min(last_date) as last_date
    from {{ ref('int_source_coverage') }}
    where contract_id in (
            'riverside_acute__emergency_admissions', 'riverside_acute__ae_attendances',
            'county_ambulance__incidents', 'riverside_fire__safe_and_well_visits',
            'riverside_agewell__falls_class_referrals'
        )

),

periods as (

    {{ complete_periods('select first_date, last_date from coverage',
                        lookback_days=var('falls_03_first_fall_lookback_days'),
                        follow_up_days=var('falls_03_reach_window_days')) }}

),

wards as (

    select * from {{ ref('geography_wards') }}

),

first_falls as (

    select *
    from falls
    where age_at_fall >= 65
        and ward_code is not null
        and (
            previous_fall_date is null
            or {{ dbt.datediff('previous_fall_date', 'fall_date', 'day') }} > {{ var('falls_03_first_fall_lookback_days') }}
        )

),

reached as (

    select
        first_falls.fall_id,
        max(case when reach_events.person_id is not null then 1 else 0 end) as was_reached
    from first_falls
    left join reach_events
        on first_falls.person_id = reach_events.person_id
            and first_falls.fall_date <= reach_events.event_date
            and reach_events.event_date
            <= {{ dbt.dateadd('day', var('falls_03_reach_window_days'), 'first_falls.fall_date') }}
    group by first_falls.fall_id

),

units as (

    select
        periods.period_type,
        periods.period_start,
        first_falls.ward_code,
        first_falls.district_code,
        first_falls.sex,
        first_falls.age_group,
        reached.was_reached as in_numerator
    from first_falls
    inner join reached
        on first_falls.fall_id = reached.fall_id
    inner join periods
        on first_falls.fall_date between periods.period_start and periods.period_end

),

final as (

    {{ indicator_values_from_units('FALLS-03', 'units', 'periods', 'wards', breakdowns=[
        {'name': 'sex', 'column': 'sex', 'values': ['M', 'F']},
        {'name': 'age', 'column': 'age_group', 'values': band_labels(falls_age_bands())}]) }}

)

select * from final
