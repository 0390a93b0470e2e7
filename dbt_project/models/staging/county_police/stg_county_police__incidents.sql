with

source as (

    select * from {{ source('valid', 'county_police__incidents') }}

),

latest as (

    -- One row per person per occurrence; a row sent again later is a correction.
    {{ latest_record_per_key('source', ['occurrence_id', 'nominal_id_pseudo']) }}

),

renamed as (

    select
        occurrence_id,
        nominal_id_pseudo,
        person_role,
        occurrence_type,
        occurrence_datetime,
        cast(occurrence_datetime as date) as occurrence_date,
        date_of_birth,
        {{ postcode_key('postcode') }} as postcode_key,
        _delivery_id as delivery_id,
        _row_number as row_number
    from latest

)

select * from renamed
