-- Incremental: a night ranks again only the keys its new deliveries (or a purged delivery)
-- touch; macros/staging/deliveries.sql says why that equals ranking the whole history.
{% set keys = ['occurrence_id', 'nominal_id_pseudo'] %}
{{ config(materialized='incremental', incremental_strategy='replace_by_key', unique_key=keys, hash_key='key_hash',
          log_staged_rows='county_police__incidents', pre_hook="{{ log_staged_rows_when_built_whole() }}") }}

with

source as not materialized (

    select * from {{ source('valid', 'county_police__incidents') }}

),

{{ staged_keys_touched('source', keys) }}

latest as (

    -- One row per person per occurrence; a row sent again later is a correction.
    {{ latest_record_per_key('source', keys) }}

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

{{ staged_rows('renamed', 'source', keys) }}
