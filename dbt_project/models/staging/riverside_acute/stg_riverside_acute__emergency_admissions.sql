-- Incremental: a night ranks again only the keys its new deliveries (or a purged delivery)
-- touch; macros/staging/deliveries.sql says why that equals ranking the whole history.
{% set keys = ['episode_id'] %}
{{ config(materialized='incremental', incremental_strategy='replace_by_key', unique_key=keys, hash_key='key_hash',
          log_staged_rows='riverside_acute__emergency_admissions', pre_hook="{{ log_staged_rows_when_built_whole() }}") }}

with

source as not materialized (

    select * from {{ source('valid', 'riverside_acute__emergency_admissions') }}

),

{{ staged_keys_touched('source', keys) }}

latest as (

    -- An episode sent again in a later delivery is a correction: the latest one stands.
    {{ latest_record_per_key('source', keys) }}

),

renamed as (

    select
        episode_id,
        spell_id,
        episode_number,
        nhs_number_pseudo,
        date_of_birth,
        {{ sex_from_nhs_code('sex') }} as sex,
        {{ postcode_key('postcode') }} as postcode_key,
        admission_date,
        episode_start_date,
        discharge_date,
        admission_method,
        primary_diagnosis,
        secondary_diagnosis_1,
        secondary_diagnosis_2,
        secondary_diagnosis_3,
        secondary_diagnosis_4,
        _delivery_id as delivery_id,
        _row_number as row_number
    from latest

)

{{ staged_rows('renamed', 'source', keys) }}
