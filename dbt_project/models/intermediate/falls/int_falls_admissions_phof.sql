-- Emergency admissions due to falls in people aged 65 and over, by the inclusion rules of
-- PHOF indicator 22401: first episode of the spell, emergency admission method, primary
-- diagnosis an injury (ICD-10 S00-T98), an external cause of a fall (W00-W19) in any
-- diagnosis position, aged 65+ on admission, resident in the district (postcode lookup).

with

episodes as (

    select * from {{ ref('stg_riverside_acute__emergency_admissions') }}

),

postcodes as (

    select * from {{ ref('stg_reference__postcodes') }}

),

methods as (

    select * from {{ ref('admission_methods') }}

),

code_ranges as (

    select * from {{ ref('icd10_code_ranges') }}

),

bands as (

    select * from {{ ref('esp2013') }}

),

injury as (

    select range_start, range_end from code_ranges where code_list = 'injury_S00_T98'

),

falls_causes as (

    select range_start, range_end from code_ranges where code_list = 'falls_W00_W19'

),

with_age as (

    select
        episodes.*,
        {{ age_in_years('episodes.date_of_birth', 'episodes.admission_date') }} as age_on_admission
    from episodes

),

eligible as (

    select with_age.*
    from with_age
    inner join methods
        on with_age.admission_method = methods.admission_method
    where with_age.episode_number = 1
        and methods.is_emergency
        and with_age.age_on_admission >= 65
        and exists (
            select 1 from injury
            where substring(with_age.primary_diagnosis, 1, 3) between injury.range_start and injury.range_end
        )
        and exists (
            select 1 from falls_causes
            where substring(with_age.primary_diagnosis, 1, 3) between falls_causes.range_start and falls_causes.range_end
                or substring(with_age.secondary_diagnosis_1, 1, 3) between falls_causes.range_start and falls_causes.range_end
                or substring(with_age.secondary_diagnosis_2, 1, 3) between falls_causes.range_start and falls_causes.range_end
                or substring(with_age.secondary_diagnosis_3, 1, 3) between falls_causes.range_start and falls_causes.range_end
                or substring(with_age.secondary_diagnosis_4, 1, 3) between falls_causes.range_start and falls_causes.range_end
        )

),

final as (

    select
        eligible.episode_id,
        eligible.spell_id,
        eligible.nhs_number_pseudo,
        eligible.admission_date,
        eligible.sex,
        eligible.age_on_admission,
        bands.age_band,
        postcodes.lsoa_code,
        postcodes.ward_code,
        postcodes.district_code
    from eligible
    inner join postcodes
        on eligible.postcode_key = postcodes.postcode_key
    inner join bands
        on eligible.age_on_admission between bands.age_from and bands.age_to

)

select * from final
