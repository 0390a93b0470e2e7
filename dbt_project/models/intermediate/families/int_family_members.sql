-- The members of each household of int_family_quarters: the people living at its address on
-- the quarter's last day (linkage.household_members), not each person's latest household,
-- with the extracts whose records placed them there (a release naming people reads them).

with

families as (

    select period_start, period_end, household_id from {{ ref('int_family_quarters') }}

),

household_members as (

    select * from {{ ref('stg_linkage__household_members') }}

),

final as (

    select
        families.period_start,
        families.household_id,
        household_members.person_id,
        household_members.sources as placement_sources,
        household_members.event_sources as placement_event_sources
    from families
    inner join household_members
        on families.household_id = household_members.household_id
            and (household_members.valid_from is null or families.period_end >= household_members.valid_from)
            and (household_members.valid_to is null or families.period_end <= household_members.valid_to)

)

select * from final
