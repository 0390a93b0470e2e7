with

source as (

    select * from {{ source('linkage', 'person_changes') }}

),

final as (

    select
        link_run,
        person_id
    from source

)

select * from final
