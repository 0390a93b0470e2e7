{#- Working-day arithmetic for England and Wales: a working day is a Monday to Friday that
    is not a bank holiday (seed bank_holidays_england_wales, via int_working_days). -#}

{#- ISO day of the week, 1 = Monday ... 7 = Sunday. Dispatched: engines spell it differently. -#}
{% macro iso_day_of_week(date_expr) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'partnership')(date_expr)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date_expr) -%}
    extract(isodow from {{ date_expr }})
{%- endmacro %}

{#- Working days elapsed from a start date to an end date, as NETWORKDAYS(start, end) - 1:
    the working days from start to end inclusive, less one, never below 0. Received on a
    working day and decided the next working day is 1; received on a Saturday and decided on
    the Tuesday is 1 (the clock starts on the Monday); decided on the day of receipt is 0.
    A scalar subquery on int_working_days, so it needs no engine-specific date function. -#}
{% macro working_days_elapsed(start_date, end_date) -%}
    (case
        when {{ start_date }} is not null and {{ end_date }} is not null then
            greatest(
                (select count(*)
                 from {{ ref('int_working_days') }} as working_days
                 where working_days.is_working_day
                   and working_days.calendar_date >= {{ start_date }}
                   and working_days.calendar_date <= {{ end_date }}) - 1,
                0)
    end)
{%- endmacro %}
