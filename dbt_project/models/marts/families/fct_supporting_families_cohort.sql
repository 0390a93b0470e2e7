-- The Supporting Families cohort of the latest reported quarter: one row per member (living
-- at the family's address on the quarter's last day) of each family with at least one
-- headline criterion, with the criteria met as flags. What leaves for whom is decided by the
-- supporting-families protocol (cohort: meets_programme_criteria).

with

families as (

    select * from {{ ref('int_family_quarters') }}

),

members as (

    select * from {{ ref('int_family_members') }}

),

latest_quarter as (

    select max(period_start) as period_start from families

),

latest_families as (

    select families.*
    from families
    inner join latest_quarter on families.period_start = latest_quarter.period_start

),

final as (

    select
        latest_families.period_start,
        latest_families.period_end,
        latest_families.household_id,
        members.person_id,
        members.placement_sources,
        members.placement_event_sources,
        latest_families.ward_code,
        latest_families.district_code,
        latest_families.crime_asb,
        latest_families.school_attendance,
        latest_families.domestic_abuse,
        latest_families.child_in_need,
        latest_families.homelessness,
        latest_families.adult_social_care,
        latest_families.criteria_met,
        latest_families.meets_programme_criteria
    from latest_families
    inner join members
        on latest_families.period_start = members.period_start
            and latest_families.household_id = members.household_id

)

select * from final
