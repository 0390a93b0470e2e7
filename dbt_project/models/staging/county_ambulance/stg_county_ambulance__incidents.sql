-- Incremental: a night ranks again only the keys its new deliveries (or a purged delivery)
-- touch; macros/staging/deliveries.sql says why that equals ranking the whole history.
{% set keys = ['incident_id'] %}
{{ config(materialized='incremental', incremental_strategy='replace_by_key', unique_key=keys, hash_key='key_hash',
          log_staged_rows='county_ambulance__incidents', pre_hook="{{ log_staged_rows_when_built_whole() }}") }}

with

source as not materialized (

    select * from {{ source('valid', 'county_ambulance__incidents') }}

),

{{ staged_keys_touched('source', keys) }}

latest as (

    -- An incident sent again in a later delivery is a correction: the latest one stands.
    {{ latest_record_per_key('source', keys) }}

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

{{ staged_rows('renamed', 'source', keys) }}
