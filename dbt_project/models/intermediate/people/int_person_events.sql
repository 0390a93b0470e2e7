-- Every person-level record the indicators use, as one event each, joined to the person it
-- is about (linkage.person_records, by contract, delivery and row). One row per staged record:
-- what happened, when, to whom, where they lived (postcode lookup, when the record has a
-- postcode) and whether the record is a fall (FALLS-02/03: an emergency admission's first
-- episode with a W00-W19 cause in any position, an A&E attendance with a W00-W19 code, an
-- ambulance incident with chief complaint FALL).
--
-- Incremental: a night writes only the records it has not stored yet and those of the people
-- linkage changed since the last build that succeeded (linkage.person_changes: a merge or
-- split moves records between people, a household or opt-out changes), and removes the
-- records no longer staged (superseded by a later delivery, a snapshot replaced, a delivery
-- purged). A record's own columns never change: a delivery's rows are fixed once accepted,
-- and a correction is a new record. Which records to build is worked out on keys alone, and
-- only for the staged rows the staging models logged as written or removed since the last
-- build that succeeded (every record of an extract whose staging table was built whole:
-- macros/incremental/staged_rows.sql); only the records to build are read whole (macro
-- to_build_only). After a link run that linked everyone, every stored record is compared
-- with the person index instead. The people of the records
-- written or removed are logged for the models that group a person's records over time
-- (macros/incremental/changed_people.sql).
-- Postcode lookup, admission methods and this code are part of the project fingerprint: when
-- they change the night builds it whole (--full-refresh). tests/e2e/test_incremental_dbt.py
-- proves the result equal to a full build.
--
-- A record is keyed by (delivery_id, row_number): delivery ids come from one sequence
-- (ops.deliveries), so a delivery belongs to one contract and contract_id adds nothing to a
-- join; joining on two columns instead of three roughly halves the joins' cost.

{#- Each staging CTE below and the contract_id its branch of `events` gives its records. -#}
{%- set contracts = {
    "admissions": "riverside_acute__emergency_admissions",
    "attendances": "riverside_acute__ae_attendances",
    "ambulance": "county_ambulance__incidents",
    "visits": "riverside_fire__safe_and_well_visits",
    "adaptations": "riverside_council__housing_adaptations",
    "homelessness": "riverside_council__homelessness_cases",
    "adult_referrals": "county_council__adult_social_care_referrals",
    "children_referrals": "county_council__children_social_care_referrals",
    "attendance": "county_council__school_attendance",
    "police": "county_police__incidents",
    "falls_classes": "riverside_agewell__falls_class_referrals"
} %}
-- depends_on: {{ ref('stg_linkage__person_changes') }}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_by_key',
    unique_key=['delivery_id', 'row_number'],
    log_changed_people=true,
    pre_hook="{{ log_everyone_when_built_whole() }}",
) }}

with

-- Not materialized: an incremental build reads each twice (its keys, then the records to
-- build); DuckDB would otherwise copy every staged record whole first.
admissions as not materialized (select * from {{ ref('stg_riverside_acute__emergency_admissions') }}),

attendances as not materialized (select * from {{ ref('stg_riverside_acute__ae_attendances') }}),

ambulance as not materialized (select * from {{ ref('stg_county_ambulance__incidents') }}),

visits as not materialized (select * from {{ ref('stg_riverside_fire__safe_and_well_visits') }}),

adaptations as not materialized (select * from {{ ref('stg_riverside_council__housing_adaptations') }}),

homelessness as not materialized (select * from {{ ref('stg_riverside_council__homelessness_cases') }}),

adult_referrals as not materialized (select * from {{ ref('stg_county_council__adult_social_care_referrals') }}),

children_referrals as not materialized (select * from {{ ref('stg_county_council__children_social_care_referrals') }}),

attendance as not materialized (select * from {{ ref('stg_county_council__school_attendance') }}),

police as not materialized (select * from {{ ref('stg_county_police__incidents') }}),

falls_classes as not materialized (select * from {{ ref('stg_riverside_agewell__falls_class_referrals') }}),

person_records as not materialized (select * from {{ ref('stg_linkage__person_records') }}),

postcodes as not materialized (select * from {{ ref('stg_reference__postcodes') }}),

methods as not materialized (select * from {{ ref('admission_methods') }}),

{% if is_incremental() %}

-- The people linkage changed since the last build that succeeded.
person_changes as not materialized (select * from {{ ref('stg_linkage__person_changes') }}),

{%- set everyone = execute and run_query(
    "select count(*) from " ~ ref('stg_linkage__person_changes') ~ " where person_id is null").columns[0].values()[0] > 0 %}
{%- set whole = contracts_staged_whole(contracts.values() | list) %}

-- The staged rows the staging models wrote or removed since the last build that succeeded
-- (macros/incremental/staged_rows.sql): only there can staging and the stored records differ.
-- Of a contract logged whole, every record.
{%- if whole | length < contracts | length %}
logged_rows as materialized (

    select distinct delivery_id, row_number from {{ staged_rows_log() }} where delivery_id is not null

),
{%- endif %}

staged_changed as materialized (

{%- for cte, contract in contracts.items() %}
    select '{{ contract }}' as contract_id, delivery_id, row_number from {{ cte }}
    {%- if contract not in whole %} semi join logged_rows using (delivery_id, row_number){% endif %}
    {{- '\n    union all' if not loop.last }}
{%- endfor %}

),

stored_changed as materialized (

{%- if whole | length < contracts | length %}
    select contract_id, delivery_id, row_number from {{ this }} semi join logged_rows using (delivery_id, row_number)
{%- endif %}
{%- if whole | length == contracts | length %}
    select contract_id, delivery_id, row_number from {{ this }}
{%- elif whole %}
    union
    select contract_id, delivery_id, row_number from {{ this }}
    where contract_id in ('{{ whole | join("', '") }}')
{%- endif %}

),

changed_people as materialized (

    select distinct person_id from person_changes where person_id is not null

),

to_build as materialized (

    -- Records not stored yet.
    select contract_id, delivery_id, row_number
    from staged_changed
    anti join stored_changed using (delivery_id, row_number)

    union all
{% if everyone %}
    -- A link run linked everyone: stored records the person index now links differently.
    select stored.contract_id, stored.delivery_id, stored.row_number
    from {{ this }} as stored
    left join person_records using (delivery_id, row_number)
    where stored.person_id is distinct from person_records.person_id
        or stored.household_id is distinct from person_records.household_id
        or stored.opted_out is distinct from coalesce(person_records.opted_out, false)
{% else %}
    -- The records of the people linkage changed: as stored, and as the person index gives them
    -- now (records not staged find nothing to build below).
    select contract_id, delivery_id, row_number
    from {{ this }}
    where {{ of_people('changed_people') }}

    union all

    select contract_id, delivery_id, row_number
    from person_records
    where person_id in (select changed_people.person_id from changed_people)
{% endif %}
),

gone as (

    -- Stored records no longer staged (replace_by_key needs only their keys).
    select contract_id, delivery_id, row_number
    from stored_changed
    anti join staged_changed using (delivery_id, row_number)

),
{% endif %}

-- In an incremental build each extract's branch reads only the records to build (to_build_only).
events as (

    select
        'riverside_acute__emergency_admissions' as contract_id, delivery_id, row_number,
        episode_id as record_id, 'riverside_acute' as agency, 'emergency_admission' as event_type,
        admission_date as event_date, date_of_birth, sex, postcode_key,
        (
            admissions.episode_number = 1
            and exists (
                select 1 from methods
                where methods.admission_method = admissions.admission_method and methods.is_emergency
            )
            and (
                {{ icd10_in_list('admissions.primary_diagnosis', 'falls_W00_W19') }}
                or {{ icd10_in_list('admissions.secondary_diagnosis_1', 'falls_W00_W19') }}
                or {{ icd10_in_list('admissions.secondary_diagnosis_2', 'falls_W00_W19') }}
                or {{ icd10_in_list('admissions.secondary_diagnosis_3', 'falls_W00_W19') }}
                or {{ icd10_in_list('admissions.secondary_diagnosis_4', 'falls_W00_W19') }}
            )
        ) as is_fall,
        true as is_health_derived, cast(null as boolean) as consent_to_share,
        cast(null as varchar) as detail
    from {{ to_build_only('admissions', 'riverside_acute__emergency_admissions') }} as admissions

    union all

    select
        'riverside_acute__ae_attendances', delivery_id, row_number,
        attendance_id, 'riverside_acute', 'ae_attendance',
        arrival_date, date_of_birth, sex, postcode_key,
        (
            {{ icd10_in_list('attendances.primary_diagnosis', 'falls_W00_W19') }}
            or {{ icd10_in_list('attendances.secondary_diagnosis', 'falls_W00_W19') }}
        ),
        true, cast(null as boolean), disposal
    from {{ to_build_only('attendances', 'riverside_acute__ae_attendances') }} as attendances

    union all

    select
        'county_ambulance__incidents', delivery_id, row_number,
        incident_id, 'county_ambulance', 'ambulance_incident',
        incident_date, date_of_birth, sex, postcode_key,
        chief_complaint = 'FALL',
        true, cast(null as boolean), chief_complaint
    from {{ to_build_only('ambulance', 'county_ambulance__incidents') }} as ambulance

    union all

    select
        'riverside_fire__safe_and_well_visits', delivery_id, row_number,
        visit_id, 'riverside_fire', 'safe_and_well_visit',
        visit_date, date_of_birth, 'U', cast(null as varchar),
        false, false, cast(null as boolean), referral_source
    from {{ to_build_only('visits', 'riverside_fire__safe_and_well_visits') }} as visits

    union all

    select
        'riverside_council__housing_adaptations', delivery_id, row_number,
        case_ref, 'riverside_council', 'housing_adaptation_referral',
        referral_date, date_of_birth, 'U', postcode_key,
        false, false, cast(null as boolean), adaptation_type
    from {{ to_build_only('adaptations', 'riverside_council__housing_adaptations') }} as adaptations

    union all

    select
        'riverside_council__homelessness_cases', delivery_id, row_number,
        case_ref, 'riverside_council', 'homelessness_approach',
        approach_date, date_of_birth, 'U', postcode_key,
        false, false, cast(null as boolean), duty_type
    from {{ to_build_only('homelessness', 'riverside_council__homelessness_cases') }} as homelessness

    union all

    select
        'county_council__adult_social_care_referrals', delivery_id, row_number,
        referral_id, 'county_council', 'adult_social_care_referral',
        referral_date, date_of_birth, sex, postcode_key,
        false, false, cast(null as boolean), outcome
    from {{ to_build_only('adult_referrals', 'county_council__adult_social_care_referrals') }} as adult_referrals

    union all

    select
        'county_council__children_social_care_referrals', delivery_id, row_number,
        referral_id, 'county_council', 'children_social_care_referral',
        referral_date, date_of_birth, sex, postcode_key,
        false, false, cast(null as boolean), decision
    from {{ to_build_only('children_referrals', 'county_council__children_social_care_referrals') }} as children_referrals

    union all

    select
        'county_council__school_attendance', delivery_id, row_number,
        {{ dbt.concat(['upn_pseudo', "'|'", 'academic_year', "'|'", 'term']) }}, 'county_council', 'school_attendance_term',
        term_end_date, date_of_birth, sex, postcode_key,
        false, false, cast(null as boolean), term
    from {{ to_build_only('attendance', 'county_council__school_attendance') }} as attendance

    union all

    select
        'county_police__incidents', delivery_id, row_number,
        {{ dbt.concat(['occurrence_id', "'|'", 'nominal_id_pseudo']) }}, 'county_police', 'police_incident',
        occurrence_date, date_of_birth, 'U', postcode_key,
        false, false, cast(null as boolean), {{ dbt.concat(['occurrence_type', "':'", 'person_role']) }}
    from {{ to_build_only('police', 'county_police__incidents') }} as police

    union all

    select
        'riverside_agewell__falls_class_referrals', delivery_id, row_number,
        referral_id, 'riverside_agewell', 'falls_class_referral',
        referral_date, date_of_birth, 'U', postcode_key,
        false, false, consent_to_share, referral_source
    from {{ to_build_only('falls_classes', 'riverside_agewell__falls_class_referrals') }} as falls_classes

),

final as (

    select
        events.contract_id,
        events.delivery_id,
        events.row_number,
        events.record_id,
        events.agency,
        events.event_type,
        events.event_date,
        person_records.person_id,
        {{ person_key('person_records.person_id') }} as person_key,
        person_records.household_id,
        coalesce(person_records.opted_out, false) as opted_out,
        events.date_of_birth,
        {{ age_in_years('events.date_of_birth', 'events.event_date') }} as age_at_event,
        events.sex,
        postcodes.lsoa_code,
        postcodes.ward_code,
        postcodes.district_code,
        events.is_fall,
        events.is_health_derived,
        events.consent_to_share,
        events.detail
    from events
    left join person_records using (delivery_id, row_number)
    left join postcodes
        on events.postcode_key = postcodes.postcode_key

)

{% if is_incremental() %}
select *, false as _deleted from final
union all by name
select *, true as _deleted from gone
{% else %}
    select * from final
{% endif %}
