-- FALLS-01's standardisation bands: per period, ward and district, persons and sex, each ESP2013
-- band 65-69 ... 90+ with its standard weight, residents, person-years (the mid-year population
-- times the period's share of its year) and admissions. Every band of every cell is present, with
-- 0 events where there were none; events of unknown sex count for persons, not for either sex.
-- int_indicator_falls_01 standardises over these rows; the release engine recomputes the rate
-- from them after disclosure control (marts.fct_indicator_bands).

with

admissions as (

    select * from {{ ref('int_falls_admissions_phof') }}

),

periods as (

    select * from {{ ref('int_reporting_periods') }}

),

population as (

    select * from {{ ref('stg_reference__population') }} where band_age_from >= 65

),

wards as (

    select * from {{ ref('geography_wards') }}

),

-- Person-years at risk by period, ward, sex and band.
band_population as (

    select
        periods.period_type,
        periods.period_start,
        periods.period_end,
        population.ward_code,
        population.sex,
        population.age_band,
        population.esp2013_weight,
        sum(population.population) as residents,
        sum(population.population) * periods.year_fraction as person_years
    from periods
    inner join population
        on periods.population_year = population.year
    group by
        periods.period_type, periods.period_start, periods.period_end, periods.year_fraction,
        population.ward_code, population.sex, population.age_band, population.esp2013_weight

),

band_events as (

    select
        periods.period_type,
        periods.period_start,
        admissions.ward_code,
        admissions.sex,
        admissions.age_band,
        count(*) as events
    from admissions
    inner join periods
        on admissions.admission_date between periods.period_start and periods.period_end
    group by periods.period_type, periods.period_start, admissions.ward_code, admissions.sex, admissions.age_band

),

-- Every band of every cell is present, with 0 events where there were none. Events of
-- unknown sex count for persons, not for either sex.
cells as (

    select
        band_population.period_type,
        band_population.period_start,
        band_population.period_end,
        band_population.ward_code,
        wards.district_code,
        band_population.sex,
        band_population.age_band,
        band_population.esp2013_weight,
        band_population.residents,
        band_population.person_years,
        coalesce(band_events.events, 0) as events
    from band_population
    inner join wards
        on band_population.ward_code = wards.ward_code
    left join band_events
        on band_population.period_type = band_events.period_type
            and band_population.period_start = band_events.period_start
            and band_population.ward_code = band_events.ward_code
            and band_population.sex = band_events.sex
            and band_population.age_band = band_events.age_band

),

unknown_sex as (

    select
        band_events.period_type,
        band_events.period_start,
        band_events.ward_code,
        wards.district_code,
        band_events.age_band,
        band_events.events
    from band_events
    inner join wards on band_events.ward_code = wards.ward_code
    where band_events.sex not in ('M', 'F')

),

persons_by_ward as (

    select
        cells.period_type, cells.period_start, cells.period_end,
        'ward' as geography_type, cells.ward_code as geography_code, 'persons' as breakdown,
        cells.age_band, cells.esp2013_weight,
        sum(cells.residents) as residents,
        {{ exact_sum('cells.person_years') }} as person_years,
        sum(cells.events) + coalesce(max(unknown_sex.events), 0) as events
    from cells
    left join unknown_sex
        on cells.period_type = unknown_sex.period_type
            and cells.period_start = unknown_sex.period_start
            and cells.ward_code = unknown_sex.ward_code
            and cells.age_band = unknown_sex.age_band
    group by cells.period_type, cells.period_start, cells.period_end, cells.ward_code, cells.age_band, cells.esp2013_weight

),

persons_by_district as (

    select
        persons_by_ward.period_type, persons_by_ward.period_start, persons_by_ward.period_end,
        'district' as geography_type, wards.district_code as geography_code, 'persons' as breakdown,
        persons_by_ward.age_band, persons_by_ward.esp2013_weight,
        sum(persons_by_ward.residents) as residents,
        {{ exact_sum('persons_by_ward.person_years') }} as person_years,
        sum(persons_by_ward.events) as events
    from persons_by_ward
    inner join wards on persons_by_ward.geography_code = wards.ward_code
    group by
        persons_by_ward.period_type, persons_by_ward.period_start, persons_by_ward.period_end,
        wards.district_code, persons_by_ward.age_band, persons_by_ward.esp2013_weight

),

sex_by_ward as (

    select
        period_type, period_start, period_end,
        'ward' as geography_type, ward_code as geography_code,
        {{ dbt.concat(["'sex:'", 'sex']) }} as breakdown,
        age_band, esp2013_weight, residents, person_years, events
    from cells

),

sex_by_district as (

    select
        period_type, period_start, period_end,
        'district' as geography_type, district_code as geography_code,
        {{ dbt.concat(["'sex:'", 'sex']) }} as breakdown,
        age_band, esp2013_weight,
        sum(residents) as residents,
        {{ exact_sum('person_years') }} as person_years,
        sum(events) as events
    from cells
    group by period_type, period_start, period_end, district_code, sex, age_band, esp2013_weight

),

bands as (

    select * from persons_by_ward
    union all
    select * from persons_by_district
    union all
    select * from sex_by_ward
    union all
    select * from sex_by_district

)

select
    'FALLS-01' as indicator_id,
    period_type,
    period_start,
    period_end,
    geography_type,
    geography_code,
    breakdown,
    age_band,
    esp2013_weight,
    residents,
    person_years,
    events
from bands
