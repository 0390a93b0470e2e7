-- Incremental: a night ranks again only the keys its new deliveries (or a purged delivery)
-- touch; macros/staging/deliveries.sql says why that equals ranking the whole history.
{% set keys = ['visit_id'] %}
{{ config(materialized='incremental', incremental_strategy='replace_by_key', unique_key=keys, hash_key='key_hash',
          log_staged_rows='riverside_fire__safe_and_well_visits', pre_hook="{{ log_staged_rows_when_built_whole() }}") }}

with

source as not materialized (

    select * from {{ source('valid', 'riverside_fire__safe_and_well_visits') }}

),

{{ staged_keys_touched('source', keys) }}

latest as (

    -- A visit sent again in a later delivery is a correction: the latest one stands.
    {{ latest_record_per_key('source', keys) }}

),

renamed as (

    select
        visit_id,
        uprn_pseudo,
        date_of_birth,
        visit_date,
        referral_source,
        {{ yes_no_flag('falls_risk_identified') }} as falls_risk_identified,
        {{ yes_no_flag('smoke_alarm_fitted') }} as smoke_alarm_fitted,
        _delivery_id as delivery_id,
        _row_number as row_number
    from latest

)

{{ staged_rows('renamed', 'source', keys) }}
