-- FALLS-02: repeat falls. People aged 65+ with a fall in the period (admission, A&E or
-- ambulance, linked across the three) who fall again within 90 days of a fall in the period,
-- as a percentage of people aged 65+ with a fall in the period, with Wilson 95% limits; by
-- ward and district of the person's first such fall in the period, month and quarter, for
-- persons, by sex and by age group (65-79, 80+). A fall before the 65th birthday does not
-- count; one after it does, so people turning 65 in the period enter on their birthday.
-- Periods end at least 90 days before the data does, so every fall's 90 days are observed.

with

falls as (

    select * from {{ ref('int_falls_episodes') }}

),

coverage as (

    select max(first_date) as first_date, min(last_date) as last_date
    from {{ ref('int_source_coverage') }}
    where contract_id in (
            'riverside_acute__emergency_admissions', 'riverside_acute__ae_attendances',
            'county_ambulance__incidents'
        )

),

periods as (

    {{ complete_periods('select first_date, last_date from coverage',
                        follow_up_days=var('falls_02_repeat_window_days')) }}

),

wards as (

    select * from {{ ref('geography_wards') }}

),

qualifying as (

    select
        periods.period_type,
        periods.period_start,
        falls.person_id,
        falls.fall_date,
        falls.ward_code,
        falls.district_code,
        falls.sex,
        falls.age_group,
        case
            when falls.next_fall_date is not null
                and {{ dbt.datediff('falls.fall_date', 'falls.next_fall_date', 'day') }}
                <= {{ var('falls_02_repeat_window_days') }}
                then 1
            else 0
        end as fell_again,
        row_number() over (
            partition by periods.period_type, periods.period_start, falls.person_id
            order by falls.fall_date, falls.fall_number
        ) as fall_in_period
    from falls
    inner join periods
        on falls.fall_date between periods.period_start and periods.period_end
    where falls.age_at_fall >= 65
        and falls.ward_code is not null

),

units as (

    -- One row per person and period, described by their first qualifying fall in it.
    select
        first_fall.period_type,
        first_fall.period_start,
        first_fall.ward_code,
        first_fall.district_code,
        first_fall.sex,
        first_fall.age_group,
        person_period.fell_again as in_numerator
    from qualifying as first_fall
    inner join (
        select period_type, period_start, person_id, max(fell_again) as fell_again
        from qualifying
        group by period_type, period_start, person_id
    ) as person_period
        on first_fall.period_type = person_period.period_type
            and first_fall.period_start = person_period.period_start
            and first_fall.person_id = person_period.person_id
    where first_fall.fall_in_period = 1

),

final as (

    {{ indicator_values_from_units('FALLS-02', 'units', 'periods', 'wards', breakdowns=[
        {'name': 'sex', 'column': 'sex', 'values': ['M', 'F']},
        {'name': 'age', 'column': 'age_group', 'values': band_labels(falls_age_bands())}]) }}

)

select * from final
