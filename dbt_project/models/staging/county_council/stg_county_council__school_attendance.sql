-- Built whole: int_person_events compares every record of this extract after it
-- (macros/incremental/staged_rows.sql).
{{ config(log_staged_rows='county_council__school_attendance', pre_hook="{{ log_staged_rows_when_built_whole() }}") }}

with

source as (

    select * from {{ source('valid', 'county_council__school_attendance') }}

),

latest as (

    -- A termly full snapshot: the latest delivery holds every term of the academic year so far.
    {{ latest_snapshot('source') }}

),

renamed as (

    select
        upn_pseudo,
        date_of_birth,
        {{ sex_mfu('sex') }} as sex,
        {{ postcode_key('postcode') }} as postcode_key,
        school_urn,
        academic_year,
        cast(substring(academic_year, 1, 4) as integer) as academic_year_start,
        upper(term) as term,
        case upper(term) when 'AUTUMN' then 1 when 'SPRING' then 2 when 'SUMMER' then 3 end as term_number,
        -- Nominal end of the term: the last day of the month English school terms end in
        -- (autumn December, spring March, summer July).
        case upper(term)
            when 'AUTUMN' then cast({{ dbt.concat(["substring(academic_year, 1, 4)", "'-12-31'"]) }} as date)
            when 'SPRING' then cast({{ dbt.dateadd('year', 1, "cast(" ~ dbt.concat(["substring(academic_year, 1, 4)", "'-03-31'"]) ~ " as date)") }} as date)
            when 'SUMMER' then cast({{ dbt.dateadd('year', 1, "cast(" ~ dbt.concat(["substring(academic_year, 1, 4)", "'-07-31'"]) ~ " as date)") }} as date)
        end as term_end_date,
        possible_sessions,
        attended_sessions,
        _delivery_id as delivery_id,
        _row_number as row_number
    from latest

)

select * from renamed
