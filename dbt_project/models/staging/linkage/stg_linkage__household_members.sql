with

source as (

    select * from {{ source('linkage', 'household_members') }}

),

final as (

    select
        household_id,
        person_id,
        valid_from,
        valid_to,
        first_seen,
        last_seen,
        evidence,
        sources,
        event_sources
    from source

)

select * from final
