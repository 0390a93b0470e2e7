with

source as (

    select * from {{ source('valid', 'riverside_acute__emergency_admissions') }}

),

latest as (

    -- An episode sent again in a later delivery is a correction: the latest one stands.
    select
        *,
        row_number() over (
            partition by episode_id order by _delivery_id desc, _row_number desc
        ) as recency
    from source

),

renamed as (

    select
        episode_id,
        spell_id,
        episode_number,
        nhs_number_pseudo,
        date_of_birth,
        case sex when '1' then 'M' when '2' then 'F' else 'U' end as sex,
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
        _delivery_id as delivery_id
    from latest
    where recency = 1

)

select * from renamed
