-- The span of dates each extract's events cover: first and last event date among the rows
-- in use (latest deliveries). Indicators report only periods wholly inside the coverage of
-- every extract they read (macro complete_periods).

with

admissions as (select * from {{ ref('stg_riverside_acute__emergency_admissions') }}),

attendances as (select * from {{ ref('stg_riverside_acute__ae_attendances') }}),

ambulance as (select * from {{ ref('stg_county_ambulance__incidents') }}),

visits as (select * from {{ ref('stg_riverside_fire__safe_and_well_visits') }}),

adaptations as (select * from {{ ref('stg_riverside_council__housing_adaptations') }}),

homelessness as (select * from {{ ref('stg_riverside_council__homelessness_cases') }}),

adult_referrals as (select * from {{ ref('stg_county_council__adult_social_care_referrals') }}),

children_referrals as (select * from {{ ref('stg_county_council__children_social_care_referrals') }}),

attendance as (select * from {{ ref('stg_county_council__school_attendance') }}),

police as (select * from {{ ref('stg_county_police__incidents') }}),

falls_classes as (select * from {{ ref('stg_riverside_agewell__falls_class_referrals') }}),

final as (

    select
        'riverside_acute__emergency_admissions' as contract_id,
        min(admission_date) as first_date, max(admission_date) as last_date
    from admissions
    union all
    select 'riverside_acute__ae_attendances', min(arrival_date), max(arrival_date) from attendances
    union all
    select 'county_ambulance__incidents', min(incident_date), max(incident_date) from ambulance
    union all
    select 'riverside_fire__safe_and_well_visits', min(visit_date), max(visit_date) from visits
    union all
    -- A snapshot: its last day is the latest date of any kind recorded in it.
    select
        'riverside_council__housing_adaptations', min(referral_date),
        max(greatest(referral_date, coalesce(approval_date, referral_date), coalesce(completion_date, referral_date)))
    from adaptations
    union all
    select 'riverside_council__homelessness_cases', min(approach_date), max(approach_date) from homelessness
    union all
    select 'county_council__adult_social_care_referrals', min(referral_date), max(referral_date) from adult_referrals
    union all
    select 'county_council__children_social_care_referrals', min(referral_date), max(referral_date) from children_referrals
    union all
    select 'county_council__school_attendance', min(term_end_date), max(term_end_date) from attendance
    union all
    select 'county_police__incidents', min(occurrence_date), max(occurrence_date) from police
    union all
    select 'riverside_agewell__falls_class_referrals', min(referral_date), max(referral_date) from falls_classes

)

select * from final
