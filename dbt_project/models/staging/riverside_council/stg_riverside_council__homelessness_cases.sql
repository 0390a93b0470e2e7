-- Built whole: int_person_events compares every record of this extract after it
-- (macros/incremental/staged_rows.sql).
{{ config(log_staged_rows='riverside_council__homelessness_cases', pre_hook="{{ log_staged_rows_when_built_whole() }}") }}

with

source as (

    select * from {{ source('valid', 'riverside_council__homelessness_cases') }}

),

latest as (

    -- A weekly full snapshot: the latest delivery holds every case to date.
    {{ latest_snapshot('source') }}

),

renamed as (

    select
        case_ref,
        uprn_pseudo,
        date_of_birth,
        {{ postcode_key('postcode') }} as postcode_key,
        approach_date,
        duty_type,
        household_type,
        children_in_household,
        case_status,
        _delivery_id as delivery_id,
        _row_number as row_number
    from latest

)

select * from renamed
