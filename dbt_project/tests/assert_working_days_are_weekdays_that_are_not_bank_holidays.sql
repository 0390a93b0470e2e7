-- int_working_days agrees with its definition day by day: a working day is a Monday to
-- Friday that is not in the bank-holiday seed, and every day of the covered years is there.
with

days as (

    select * from {{ ref('int_working_days') }}

),

holidays as (

    select * from {{ ref('bank_holidays_england_wales') }}

),

wrong_flag as (

    select calendar_date
    from days
    where is_working_day <> (iso_day_of_week <= 5 and not is_bank_holiday)
        or is_bank_holiday <> (calendar_date in (select holidays.date from holidays))

),

missing_holiday as (

    select date as calendar_date from holidays
    where date not in (select days.calendar_date from days where days.is_bank_holiday)

),

gaps as (

    -- Consecutive days only: the number of days equals the span.
    select max(calendar_date) as calendar_date
    from days
    having count(*) <> {{ dbt.datediff('min(calendar_date)', 'max(calendar_date)', 'day') }} + 1

)

select * from wrong_flag
union all
select * from missing_holiday
union all
select * from gaps
