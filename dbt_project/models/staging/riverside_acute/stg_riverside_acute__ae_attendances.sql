-- Incremental: a night ranks again only the keys its new deliveries (or a purged delivery)
-- touch; macros/staging/deliveries.sql says why that equals ranking the whole history.
{% set keys = ['attendance_id'] %}
{{ config(materialized='incremental', incremental_strategy='replace_by_key', unique_key=keys, hash_key='key_hash',
          log_staged_rows='riverside_acute__ae_attendances', pre_hook="{{ log_staged_rows_when_built_whole() }}") }}

with

source as not materialized (

    select * from {{ source('valid', 'riverside_acute__ae_attendances') }}

),

{{ staged_keys_touched('source', keys) }}

latest as (

    -- An attendance sent again in a later delivery is a correction: the latest one stands.
    {{ latest_record_per_key('source', keys) }}

),

renamed as (

    select
        attendance_id,
        nhs_number_pseudo,
        date_of_birth,
        {{ sex_from_nhs_code('sex') }} as sex,
        {{ postcode_key('postcode') }} as postcode_key,
        arrival_datetime,
        cast(arrival_datetime as date) as arrival_date,
        departure_datetime,
        primary_diagnosis,
        secondary_diagnosis,
        disposal,
        _delivery_id as delivery_id,
        _row_number as row_number
    from latest

)

{{ staged_rows('renamed', 'source', keys) }}
