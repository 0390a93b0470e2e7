-- Complete calendar months and quarters covered by the admissions data, each with the
-- population year it is measured against and the share of a year it spans (person-years).

with

admissions as (

    select * from {{ ref('stg_riverside_acute__emergency_admissions') }}

),

population_years as (

    select distinct year from {{ ref('population_estimates') }}

),

coverage as (

    select min(admission_date) as first_date, max(admission_date) as last_date from admissions

),

periods as (

    select * from {{ ref('int_calendar_periods') }}

),

complete as (

    select periods.*
    from periods
    cross join coverage
    where periods.period_start >= coverage.first_date
        and periods.period_end <= coverage.last_date

),

final as (

    select
        complete.period_type,
        complete.period_start,
        complete.period_end,
        -- The latest mid-year estimate not after the period's year (the newest is used
        -- until the next is published).
        coalesce(
            (
                select max(population_years.year) from population_years
                where population_years.year <= extract(year from complete.period_start)
            ),
            (select min(population_years.year) from population_years)
        ) as population_year,
        {{ stat_float(dbt.datediff('complete.period_start', 'complete.period_end', 'day') ~ ' + 1') }}
        / {{ dbt.datediff(
                "cast(" ~ dbt.date_trunc('year', 'complete.period_start') ~ " as date)",
                "cast(" ~ dbt.dateadd('year', 1, dbt.date_trunc('year', 'complete.period_start')) ~ " as date)",
                'day') }} as year_fraction
    from complete

)

select * from final
