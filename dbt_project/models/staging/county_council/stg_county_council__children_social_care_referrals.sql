-- Incremental: a night ranks again only the keys its new deliveries (or a purged delivery)
-- touch; macros/staging/deliveries.sql says why that equals ranking the whole history.
{% set keys = ['referral_id'] %}
{{ config(materialized='incremental', incremental_strategy='replace_by_key', unique_key=keys, hash_key='key_hash',
          log_staged_rows='county_council__children_social_care_referrals', pre_hook="{{ log_staged_rows_when_built_whole() }}") }}

with

source as not materialized (

    select * from {{ source('valid', 'county_council__children_social_care_referrals') }}

),

{{ staged_keys_touched('source', keys) }}

latest as (

    -- A referral sent again in a later delivery is a correction: the latest one stands.
    {{ latest_record_per_key('source', keys) }}

),

renamed as (

    select
        referral_id,
        child_id_pseudo,
        upn_pseudo,
        uprn_pseudo,
        date_of_birth,
        {{ sex_mfu('sex') }} as sex,
        {{ postcode_key('postcode') }} as postcode_key,
        referral_datetime,
        cast(referral_datetime as date) as referral_date,
        referral_source,
        decision_datetime,
        cast(decision_datetime as date) as decision_date,
        decision,
        _delivery_id as delivery_id,
        _row_number as row_number
    from latest

)

{{ staged_rows('renamed', 'source', keys) }}
