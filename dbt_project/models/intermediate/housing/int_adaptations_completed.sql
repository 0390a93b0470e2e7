-- Disabled Facilities Grant adaptations completed, from the council's latest snapshot, each
-- with the days from referral to completion and the resident's ward (FALLS-04).

with

adaptations as (

    select * from {{ ref('stg_riverside_council__housing_adaptations') }}

),

postcodes as (

    select * from {{ ref('stg_reference__postcodes') }}

),

completed as (

    select
        adaptations.case_ref,
        adaptations.referral_date,
        adaptations.completion_date,
        {{ dbt.datediff('adaptations.referral_date', 'adaptations.completion_date', 'day') }} as days_to_completion,
        {{ age_in_years('adaptations.date_of_birth', 'adaptations.referral_date') }} as age_at_referral,
        adaptations.adaptation_type,
        postcodes.lsoa_code,
        postcodes.ward_code,
        postcodes.district_code
    from adaptations
    inner join postcodes
        on adaptations.postcode_key = postcodes.postcode_key
    where adaptations.completion_date is not null

),

final as (

    select
        *,
        days_to_completion <= {{ var('falls_04_target_days') }} as completed_within_target,
        {{ age_group('age_at_referral', life_stage_age_bands()) }} as age_group
    from completed

)

select * from final
