with

source as (

    select * from {{ source('linkage', 'persons') }}

),

final as (

    select
        person_id,
        household_id,
        opted_out
    from source

)

select * from final
