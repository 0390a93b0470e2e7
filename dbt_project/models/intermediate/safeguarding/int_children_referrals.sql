-- Children's social care referrals with what MASH-01 and MASH-02 need: working days from
-- receipt to decision, the child's previous referral (Children in Need census: by the
-- council's child identifier), age at referral and the ward of the child's home.

with

referrals as (

    select * from {{ ref('stg_county_council__children_social_care_referrals') }}

),

postcodes as (

    select * from {{ ref('stg_reference__postcodes') }}

),

chained as (

    select
        referrals.*,
        -- The child's previous referral: the latest one received before this one.
        lag(referrals.referral_date) over (
            partition by referrals.child_id_pseudo
            order by referrals.referral_datetime, referrals.referral_id
        ) as previous_referral_date
    from referrals

),

final as (

    select
        chained.referral_id,
        chained.child_id_pseudo,
        chained.referral_datetime,
        chained.referral_date,
        chained.decision_datetime,
        chained.decision_date,
        chained.decision,
        {{ working_days_elapsed('chained.referral_date', 'chained.decision_date') }} as working_days_to_decision,
        coalesce({{ working_days_elapsed('chained.referral_date', 'chained.decision_date') }} <= 1, false)
            as decided_within_1_working_day,
        chained.previous_referral_date,
        -- Within 12 months: on or after the same day twelve calendar months earlier.
        coalesce(
            chained.previous_referral_date
            >= cast({{ dbt.dateadd('month', -12, 'chained.referral_date') }} as date), false)
            as is_re_referral,
        chained.sex,
        {{ age_in_years('chained.date_of_birth', 'chained.referral_date') }} as age_at_referral,
        {{ age_group(age_in_years('chained.date_of_birth', 'chained.referral_date'), children_age_bands()) }}
            as age_group,
        postcodes.lsoa_code,
        postcodes.ward_code,
        postcodes.district_code
    from chained
    left join postcodes
        on chained.postcode_key = postcodes.postcode_key

)

select * from final
