with

source as (

    select * from {{ source('valid', 'nhs_optout__opt_outs') }}

),

latest as (

    -- A monthly full snapshot of the national data opt-out list.
    {{ latest_snapshot('source') }}

),

renamed as (

    select distinct
        nhs_number_pseudo,
        _delivery_id as delivery_id
    from latest

)

select * from renamed
