-- SF-02: sustained improvement. Of the families meeting the Supporting Families criteria in
-- the quarter twelve months earlier (SF-01's cohort), the percentage with no police
-- occurrence involving any member in the six months to the quarter's end and every pupil
-- member attending at least 90% of possible sessions in the last term ended by then
-- (families without a pupil in that term meet the attendance condition). Wilson 95% limits;
-- by ward and district of identification, quarterly.

with

families as (

    select * from {{ ref('int_family_quarters') }} where meets_programme_criteria and ward_code is not null

),

events as (

    select * from {{ ref('int_person_events') }} where person_id is not null

),

attendance as (

    select * from {{ ref('stg_county_council__school_attendance') }}

),

person_records as (

    select * from {{ ref('stg_linkage__person_records') }}

),

police_coverage as (

    select first_date, last_date from {{ ref('int_source_coverage') }}
    where contract_id = 'county_police__incidents'

),

wards as (

    select * from {{ ref('geography_wards') }}

),

terms as (

    select distinct term_end_date from attendance

),

outcome_quarters as (

    -- Quarters twelve months after an identification quarter, inside the police data, with a
    -- term ended in the year before their end.
    select
        periods.period_type,
        periods.period_start,
        periods.period_end,
        cast({{ dbt.dateadd('month', -12, 'periods.period_start') }} as date) as identified_in,
        cast({{ dbt.dateadd('month', -6, dbt.dateadd('day', 1, 'periods.period_end')) }} as date) as incident_window_start,
        (select max(terms.term_end_date) from terms where terms.term_end_date <= periods.period_end) as last_term_end
    from ({{ complete_periods('select first_date, last_date from police_coverage', period_types=['quarter']) }}) as periods

),

periods as (

    select outcome_quarters.*
    from outcome_quarters
    where outcome_quarters.identified_in in (
            select family_quarters.period_start from {{ ref('int_family_quarters') }} as family_quarters
        )
        and outcome_quarters.last_term_end is not null
        and outcome_quarters.last_term_end > cast({{ dbt.dateadd('month', -12, 'outcome_quarters.period_end') }} as date)

),

cohort as (

    select
        periods.period_type,
        periods.period_start,
        periods.period_end,
        periods.incident_window_start,
        periods.last_term_end,
        families.household_id,
        families.ward_code,
        families.district_code
    from periods
    inner join families
        on periods.identified_in = families.period_start

),

incidents as (

    select distinct cohort.period_start, cohort.household_id
    from cohort
    inner join events
        on cohort.household_id = events.household_id
            and events.event_type = 'police_incident'
            and cohort.incident_window_start <= events.event_date
            and cohort.period_end >= events.event_date

),

low_attendance as (

    select distinct cohort.period_start, cohort.household_id
    from cohort
    inner join person_records
        on cohort.household_id = person_records.household_id
            and person_records.contract_id = 'county_council__school_attendance'
    inner join attendance
        on person_records.delivery_id = attendance.delivery_id
            and person_records.row_number = attendance.row_number
            and cohort.last_term_end = attendance.term_end_date
    where attendance.attended_sessions < 0.9 * attendance.possible_sessions

),

units as (

    select
        cohort.period_type,
        cohort.period_start,
        cohort.ward_code,
        cohort.district_code,
        case when incidents.household_id is null and low_attendance.household_id is null then 1 else 0 end
            as in_numerator
    from cohort
    left join incidents
        on cohort.period_start = incidents.period_start
            and cohort.household_id = incidents.household_id
    left join low_attendance
        on cohort.period_start = low_attendance.period_start
            and cohort.household_id = low_attendance.household_id

),

final as (

    {{ indicator_values_from_units('SF-02', 'units', 'periods', 'wards') }}

)

select * from final
