-- Supporting Families: households and the programme's headline criteria, per quarter.
-- A household is the people living at one address at the quarter's end
-- (linkage.household_members); a family is a household with a dependent child (a member
-- under 18 then). A member's evidence counts for the household they live in at the
-- quarter's end, when dated in the `sf_criteria_window_months` months up to it:
--   crime_asb          a member recorded as OFFENDER in an ASB occurrence (police)
--   school_attendance  a pupil attending below 90% of possible sessions over the window's terms
--   domestic_abuse     a member in a DOMESTIC_ABUSE occurrence, in any role (police)
--   child_in_need      a children's social care referral of a member
--   homelessness       a homelessness approach by a member
--   adult_social_care  an adult social care referral of a member assessed as having needs
-- Quarters lie wholly inside the police, children's and adults' social care and homelessness
-- data, window included. One row per household and quarter with at least one criterion.
--
-- Incremental: a household's row for a quarter depends on its members that day and their
-- events alone, so a night builds again the households whose members linkage changed or whose
-- members' events int_person_events rewrote (macros/incremental/changed_households.sql), in
-- every quarter, and every household in a quarter not stored yet (newly complete); a quarter
-- no longer reported is removed. The other rows are kept.

-- depends_on: {{ ref('stg_linkage__household_changes') }}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_by_key',
    unique_key=['period_start', 'household_id'],
) }}
{%- set partial = is_incremental() and not every_household_changed() %}

with

-- Not materialized: each reader takes only its columns and rows of the 2 million events.
events as not materialized (

    select * from {{ ref('int_person_events') }} where person_id is not null

),

attendance as (

    select * from {{ ref('stg_county_council__school_attendance') }}

),

person_records as (

    select * from {{ ref('stg_linkage__person_records') }}

),

coverage as (

    select max(first_date) as first_date, min(last_date) as last_date
    from {{ ref('int_source_coverage') }}
    where contract_id in (
            'county_police__incidents', 'county_council__children_social_care_referrals',
            'county_council__adult_social_care_referrals', 'riverside_council__homelessness_cases'
        )

),

quarters as (

    select
        periods.period_type,
        periods.period_start,
        periods.period_end,
        cast({{ dbt.dateadd('month', -1 * var('sf_criteria_window_months'),
                            dbt.dateadd('day', 1, 'periods.period_end')) }} as date) as window_start
    from ({{ complete_periods('select first_date, last_date from coverage', period_types=['quarter']) }}) as periods

),

reported_quarters as (

    select quarters.*
    from quarters
    cross join coverage
    where quarters.window_start >= coverage.first_date

),

household_members as (

    select * from {{ ref('stg_linkage__household_members') }}

),
{% if partial %}

stored_quarters as materialized (

    select distinct period_start from {{ this }}

),

-- Quarters newly complete: every household is built for them.
new_quarters as materialized (

    select period_start from reported_quarters
    where period_start not in (select stored_quarters.period_start from stored_quarters)

),

households as materialized (

    {{ households_to_rebuild('household_members') }}

),
{% endif %}

-- Each member of a household on each reported quarter's last day (of the households and
-- quarters to build).
quarter_members as {{ 'materialized ' if partial }}(

    select
        reported_quarters.period_start,
        household_members.household_id,
        household_members.person_id
    from reported_quarters
    inner join household_members
        on (household_members.valid_from is null or reported_quarters.period_end >= household_members.valid_from)
            and (household_members.valid_to is null or reported_quarters.period_end <= household_members.valid_to)
    {% if partial -%}
    where household_members.household_id in (select households.household_id from households)
        and reported_quarters.period_start not in (select new_quarters.period_start from new_quarters)

    union all

    select
        reported_quarters.period_start,
        household_members.household_id,
        household_members.person_id
    from reported_quarters
    inner join household_members
        on (household_members.valid_from is null or reported_quarters.period_end >= household_members.valid_from)
            and (household_members.valid_to is null or reported_quarters.period_end <= household_members.valid_to)
    where reported_quarters.period_start in (select new_quarters.period_start from new_quarters)
    {%- endif %}

),
{% if partial %}

members_to_build as materialized (

    select distinct person_id from quarter_members

),

-- Their school attendance records with the person int_person_events gives them (the person
-- index's, read by the integer person key instead of scanning the whole index).
attendance_people as (

    select contract_id, delivery_id, row_number, person_id from events
    where contract_id = 'county_council__school_attendance' and {{ of_people('members_to_build') }}

),
{% endif %}

record_evidence as (

    select
        person_id,
        event_date,
        case
            when event_type = 'police_incident' and detail = 'ASB:OFFENDER' then 'crime_asb'
            when event_type = 'police_incident' and detail like 'DOMESTIC_ABUSE:%' then 'domestic_abuse'
            when event_type = 'children_social_care_referral' then 'child_in_need'
            when event_type = 'homelessness_approach' then 'homelessness'
            when event_type = 'adult_social_care_referral' and detail = 'ASSESSMENT' then 'adult_social_care'
        end as criterion
    from events
    {%- if partial %}
    where {{ of_people('members_to_build') }}
    {%- endif %}

),

person_evidence as (

    select
        reported_quarters.period_start,
        record_evidence.person_id,
        record_evidence.criterion
    from record_evidence
    inner join reported_quarters
        on record_evidence.event_date >= reported_quarters.window_start
            and record_evidence.event_date <= reported_quarters.period_end
    where record_evidence.criterion is not null

    union all

    -- Pupils attending below 90% over the terms ending in the window.
    select
        reported_quarters.period_start,
        person_records.person_id,
        'school_attendance' as criterion
    from attendance
    inner join {{ 'attendance_people as person_records' if partial else 'person_records' }}
        on person_records.contract_id = 'county_council__school_attendance'
            and attendance.delivery_id = person_records.delivery_id
            and attendance.row_number = person_records.row_number
    inner join reported_quarters
        on attendance.term_end_date >= reported_quarters.window_start
            and attendance.term_end_date <= reported_quarters.period_end
    group by reported_quarters.period_start, person_records.person_id
    having sum(attendance.attended_sessions) < 0.9 * sum(attendance.possible_sessions)

),

criteria as (

    select
        quarter_members.period_start,
        quarter_members.household_id,
        max(case when person_evidence.criterion = 'crime_asb' then 1 else 0 end) as crime_asb,
        max(case when person_evidence.criterion = 'school_attendance' then 1 else 0 end) as school_attendance,
        max(case when person_evidence.criterion = 'domestic_abuse' then 1 else 0 end) as domestic_abuse,
        max(case when person_evidence.criterion = 'child_in_need' then 1 else 0 end) as child_in_need,
        max(case when person_evidence.criterion = 'homelessness' then 1 else 0 end) as homelessness,
        max(case when person_evidence.criterion = 'adult_social_care' then 1 else 0 end) as adult_social_care
    from person_evidence
    inner join quarter_members
        on person_evidence.period_start = quarter_members.period_start
            and person_evidence.person_id = quarter_members.person_id
    group by quarter_members.period_start, quarter_members.household_id

),

-- Only households with a criterion in a quarter are reported, so the children and the home
-- are looked up for their members only.
criteria_members as {{ 'materialized ' if partial }}(

    select quarter_members.*
    from quarter_members
    inner join criteria
        on quarter_members.period_start = criteria.period_start
            and quarter_members.household_id = criteria.household_id

),

criteria_events as (

    select events.*
    from events
    -- A partial build reads the events of the few members by their integer key first.
    where {{ of_people('criteria_members', 'events') if partial else 'events.person_id in (select criteria_members.person_id from criteria_members)' }}

),

children as (

    -- Households with a member under 18 at the quarter's end (born by then).
    select distinct
        criteria_members.period_start,
        criteria_members.household_id
    from criteria_members
    inner join reported_quarters
        on criteria_members.period_start = reported_quarters.period_start
    inner join criteria_events as events
        on criteria_members.person_id = events.person_id
            and reported_quarters.period_end >= events.date_of_birth
    where {{ age_in_years('events.date_of_birth', 'reported_quarters.period_end') }} < 18

),

homes as (

    -- Where the household lived: the ward of its members' latest record with a home in the
    -- district by the quarter's end (the latest date, then the first contract and record id:
    -- one record, as record ids are unique within a contract).
    select
        period_start,
        household_id,
        home.ward_code,
        home.district_code
    from (
        select
            reported_quarters.period_start,
            criteria_members.household_id,
            arg_min(
                { 'ward_code': events.ward_code, 'district_code': events.district_code },
                {
                    'latest': -epoch_ms(events.event_date), 'contract_id': events.contract_id,
                    'record_id': events.record_id
                }
            ) as home
        from criteria_members
        inner join reported_quarters
            on criteria_members.period_start = reported_quarters.period_start
        inner join criteria_events as events
            on criteria_members.person_id = events.person_id
                and reported_quarters.period_end >= events.event_date
        where events.ward_code is not null
        group by reported_quarters.period_start, criteria_members.household_id
    ) as latest

),

final as (

    select
        reported_quarters.period_type,
        reported_quarters.period_start,
        reported_quarters.period_end,
        reported_quarters.window_start,
        criteria.household_id,
        homes.ward_code,
        homes.district_code,
        children.household_id is not null as has_dependent_child,
        criteria.crime_asb = 1 as crime_asb,
        criteria.school_attendance = 1 as school_attendance,
        criteria.domestic_abuse = 1 as domestic_abuse,
        criteria.child_in_need = 1 as child_in_need,
        criteria.homelessness = 1 as homelessness,
        criteria.adult_social_care = 1 as adult_social_care,
        criteria.crime_asb + criteria.school_attendance + criteria.domestic_abuse
        + criteria.child_in_need + criteria.homelessness + criteria.adult_social_care as criteria_met,
        children.household_id is not null
        and criteria.crime_asb + criteria.school_attendance + criteria.domestic_abuse
        + criteria.child_in_need + criteria.homelessness + criteria.adult_social_care
        >= {{ var('sf_min_criteria') }} as meets_programme_criteria
    from criteria
    inner join reported_quarters
        on criteria.period_start = reported_quarters.period_start
    left join children
        on criteria.period_start = children.period_start
            and criteria.household_id = children.household_id
    left join homes
        on criteria.period_start = homes.period_start
            and criteria.household_id = homes.household_id

)

{% if is_incremental() %}
select *, false as _deleted from final
union all by name
-- Every stored row of the households built, and of quarters no longer reported: replaced or removed.
select period_start, household_id, true as _deleted from {{ this }}
{%- if partial %}
where household_id in (select households.household_id from households)
    or period_start not in (select reported_quarters.period_start from reported_quarters)
{%- endif %}
{% else %}
    select * from final
{% endif %}
