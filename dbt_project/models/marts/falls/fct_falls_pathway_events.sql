-- The falls pathway, person by person, for people aged 65+: each fall record (emergency
-- admission, A&E attendance, ambulance incident), Fire & Rescue safe-and-well visit, Age Well
-- falls class referral and home adaptation (DFG) referral, with the person's linked id, age
-- band, sex and LSOA and the event's month. Source of the falls-analysts protocol's
-- pseudonymised release: person_id never leaves the secure zone (the release engine replaces
-- it with a recipient-specific pseudonym), opted_out / is_health_derived / consent_to_share
-- carry what the release must filter on.
--
-- Incremental: a person's rows depend on their own records only (their sex, their nearest
-- LSOA), so a night rebuilds the people whose records int_person_events wrote or removed since
-- the last build that succeeded (macros/incremental/changed_people.sql).

{{ config(
    materialized='incremental',
    incremental_strategy='replace_by_key',
    unique_key='person_id',
) }}

with

{% if is_incremental() %}
people as materialized (

    {{ people_to_rebuild(ref('int_person_events')) }}

),
{% endif %}

-- In a full build not materialized: each reader takes only its columns and rows of the 2
-- million events (a materialized copy of every column was most of this model's time). In an
-- incremental one materialized: the rebuilt people's events are few, and three readers would
-- otherwise each scan the whole history for them.
events as {{ 'materialized' if is_incremental() else 'not materialized' }} (

    select * from {{ ref('int_person_events') }} where person_id is not null
    {%- if is_incremental() %}
        and {{ of_people('people') }}
    {%- endif %}

),

bands as (

    select * from {{ ref('esp2013') }}

),

pathway as (

    select
        events.*,
        case
            when event_type = 'emergency_admission' and is_fall then 'fall_admission'
            when event_type = 'ae_attendance' and is_fall then 'fall_ae_attendance'
            when event_type = 'ambulance_incident' and is_fall then 'fall_ambulance_incident'
            when event_type = 'safe_and_well_visit' then 'safe_and_well_visit'
            when event_type = 'falls_class_referral' then 'falls_class_referral'
            when event_type = 'housing_adaptation_referral' then 'home_adaptation_referral'
        end as pathway_event_type
    from events
    where age_at_event >= 65

),

person_sex as (

    -- A person's sex as most of their records give it (U when they disagree evenly or never say);
    -- needed only for pathway events that do not give M or F themselves.
    select
        person_id,
        case
            when sum(case when events.sex = 'M' then 1 else 0 end) > sum(case when events.sex = 'F' then 1 else 0 end)
                then 'M'
            when sum(case when events.sex = 'F' then 1 else 0 end) > sum(case when events.sex = 'M' then 1 else 0 end)
                then 'F'
            else 'U'
        end as sex
    from events
    semi join (select person_id from pathway where pathway_event_type is not null and coalesce(sex, 'U') not in ('M', 'F')) as wanted
        using (person_id)
    group by person_id

),

located as (

    -- Events without a postcode (fire visits) take the person's nearest known LSOA: the
    -- latest on or before the event, else the earliest after it.
    select pathway_id, lsoa_code
    from (
        select
            {{ dbt.concat(["pathway.contract_id", "'|'", "cast(pathway.delivery_id as varchar)", "'|'", "cast(pathway.row_number as varchar)"]) }} as pathway_id,
            known.lsoa_code,
            row_number() over (
                partition by pathway.contract_id, pathway.delivery_id, pathway.row_number
                order by
                    case when known.event_date <= pathway.event_date then 0 else 1 end,
                    case when known.event_date <= pathway.event_date then {{ dbt.datediff('known.event_date', 'pathway.event_date', 'day') }}
                        else {{ dbt.datediff('pathway.event_date', 'known.event_date', 'day') }}
                    end,
                    known.contract_id, known.record_id
            ) as nearness
        from pathway
        inner join events as known
            on pathway.person_id = known.person_id
                and known.lsoa_code is not null
        where pathway.pathway_event_type is not null
            and pathway.lsoa_code is null
    ) as candidates
    where nearness = 1

),

final as (

    select
        pathway.contract_id,
        pathway.delivery_id,
        pathway.row_number,
        pathway.person_id,
        bands.age_band,
        case when pathway.sex in ('M', 'F') then pathway.sex else person_sex.sex end as sex,
        coalesce(pathway.lsoa_code, located.lsoa_code) as lsoa_code,
        cast({{ dbt.date_trunc('month', 'pathway.event_date') }} as date) as event_month,
        pathway.pathway_event_type as event_type,
        pathway.agency,
        pathway.opted_out,
        pathway.is_health_derived,
        pathway.consent_to_share
    from pathway
    inner join bands
        on pathway.age_at_event between bands.age_from and bands.age_to
    left join person_sex
        on pathway.person_id = person_sex.person_id
    left join located
        on located.pathway_id
            = {{ dbt.concat(["pathway.contract_id", "'|'", "cast(pathway.delivery_id as varchar)", "'|'", "cast(pathway.row_number as varchar)"]) }}
    where pathway.pathway_event_type is not null

)

{{ rows_of_people('final', 'people') }}
