-- One row per calendar day of the years the bank-holiday seed covers, marking working days
-- in England and Wales: Monday to Friday and not a bank holiday. Working-day arithmetic
-- (macro working_days_elapsed) counts rows of this table, so it is only defined inside
-- these years; the seed must be extended before it runs out.

with

bank_holidays as (

    select * from {{ ref('bank_holidays_england_wales') }}

),

covered as (

    select
        cast({{ dbt.date_trunc('year', 'min(date)') }} as date) as first_day,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('year', 1, dbt.date_trunc('year', 'max(date)'))) }} as date) as last_day
    from bank_holidays

),

days as (

    select
        cast({{ dbt.dateadd('day', 'series.generated_number - 1', 'covered.first_day') }} as date) as calendar_date,
        covered.last_day
    from ({{ dbt.generate_series(7320) }}) as series
    cross join covered

),

final as (

    select
        days.calendar_date,
        {{ iso_day_of_week('days.calendar_date') }} as iso_day_of_week,
        bank_holidays.date is not null as is_bank_holiday,
        {{ iso_day_of_week('days.calendar_date') }} <= 5 and bank_holidays.date is null as is_working_day
    from days
    left join bank_holidays
        on days.calendar_date = bank_holidays.date
    where days.calendar_date <= days.last_day

)

select * from final
