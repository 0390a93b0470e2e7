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
        evidence
    from source

)

select * from final
