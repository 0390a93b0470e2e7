with

source as (

    select * from {{ source('valid', 'county_ambulance__incidents') }}

),

latest as (

    -- An incident sent again in a later delivery is a correction: the latest one stands.
    {{ latest_record_per_key('source', ['incident_id']) }}

),

renamed as (

    select
        incident_id,
        incident_datetime,
        cast(incident_datetime as date) as incident_date,
        nhs_number_pseudo,
        date_of_birth,
        {{ sex_mfu('sex') }} as sex,
        {{ postcode_key('postcode') }} as postcode_key,
        upper(chief_complaint) as chief_complaint,
        {{ yes_no_flag('conveyed') }} as was_conveyed,
        _delivery_id as delivery_id,
        _row_number as row_number
    from latest

)

select * from renamed
