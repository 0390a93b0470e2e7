-- Falls of linked people: the fall records of one person (emergency admission, A&E
-- attendance, ambulance incident) that follow each other within `falls_episode_gap_days`
-- are one fall (the ambulance, A&E and admission of the same fall). One row per fall, dated
-- by its first record, described by its representative record (the earliest with a home in
-- the district; admission before A&E before ambulance on the same day), with the person's
-- previous and next fall.
--
-- Incremental: a person's falls depend on their own records only, so a night rebuilds the
-- people whose records int_person_events wrote or removed since the last build that succeeded
-- (macros/incremental/changed_people.sql) and keeps everyone else's rows.

{{ config(
    materialized='incremental',
    incremental_strategy='replace_by_key',
    unique_key='person_id',
) }}

with

{% if is_incremental() %}
people as materialized (

    {{ people_to_rebuild(ref('int_person_events')) }}

),
{% endif %}

fall_records as (

    select * from {{ ref('int_person_events') }}
    where is_fall and person_id is not null
    {%- if is_incremental() %}
        and {{ of_people('people') }}
    {%- endif %}

),

ordered as (

    select
        fall_records.*,
        lag(event_date) over (partition by person_id order by event_date, contract_id, record_id) as previous_record_date
    from fall_records

),

starts as (

    select
        ordered.*,
        case
            when previous_record_date is null
                or {{ dbt.datediff('previous_record_date', 'event_date', 'day') }} > {{ var('falls_episode_gap_days') }}
                then 1
            else 0
        end as starts_fall
    from ordered

),

numbered as (

    select
        starts.*,
        sum(starts_fall) over (
            partition by person_id order by event_date, contract_id, record_id
            rows between unbounded preceding and current row
        ) as fall_number
    from starts

),

ranked as (

    select
        numbered.*,
        row_number() over (
            partition by person_id, fall_number
            order by
                case when ward_code is null then 1 else 0 end,
                event_date,
                case event_type when 'emergency_admission' then 1 when 'ae_attendance' then 2 else 3 end,
                record_id
        ) as representative_rank
    from numbered

),

falls as (

    select
        person_id,
        fall_number,
        min(event_date) as fall_date,
        max(event_date) as last_record_date,
        count(*) as records,
        max(case when event_type = 'emergency_admission' then 1 else 0 end) = 1 as was_admitted,
        max(case when event_type = 'ae_attendance' then 1 else 0 end) = 1 as attended_ae,
        max(case when event_type = 'ambulance_incident' then 1 else 0 end) = 1 as had_ambulance
    from ranked
    group by person_id, fall_number

),

representative as (

    select * from ranked where representative_rank = 1

),

final as (

    select
        {{ dbt.concat(['falls.person_id', "'#'", 'cast(falls.fall_number as varchar)']) }} as fall_id,
        falls.person_id,
        falls.fall_number,
        falls.fall_date,
        falls.last_record_date,
        falls.records,
        falls.was_admitted,
        falls.attended_ae,
        falls.had_ambulance,
        {{ age_in_years('representative.date_of_birth', 'falls.fall_date') }} as age_at_fall,
        representative.sex,
        {{ age_group(age_in_years('representative.date_of_birth', 'falls.fall_date'), falls_age_bands()) }} as age_group,
        representative.lsoa_code,
        representative.ward_code,
        representative.district_code,
        representative.opted_out,
        lag(falls.fall_date) over (partition by falls.person_id order by falls.fall_number) as previous_fall_date,
        lead(falls.fall_date) over (partition by falls.person_id order by falls.fall_number) as next_fall_date
    from falls
    inner join representative
        on falls.person_id = representative.person_id
            and falls.fall_number = representative.fall_number

)

{{ rows_of_people('final', 'people') }}
