with

source as (

    select * from {{ source('linkage', 'household_changes') }}

),

final as (

    select
        link_run,
        household_id
    from source

)

select * from final
