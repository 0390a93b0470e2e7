-- Built whole: int_person_events compares every record of this extract after it
-- (macros/incremental/staged_rows.sql).
{{ config(log_staged_rows='riverside_agewell__falls_class_referrals', pre_hook="{{ log_staged_rows_when_built_whole() }}") }}

with

source as (

    select * from {{ source('valid', 'riverside_agewell__falls_class_referrals') }}

),

latest as (

    -- A monthly full snapshot: the latest delivery holds every referral to date.
    {{ latest_snapshot('source') }}

),

renamed as (

    select
        referral_id,
        date_of_birth,
        {{ postcode_key('postcode') }} as postcode_key,
        referral_date,
        first_class_date,
        classes_attended,
        referral_source,
        -- Only an explicit yes is consent; a blank is not.
        coalesce(consent_to_share, false) as consent_to_share,
        _delivery_id as delivery_id,
        _row_number as row_number
    from latest

)

select * from renamed
