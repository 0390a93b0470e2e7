{#-
    Aggregates counted units into indicator values, one row per period, geography (each ward
    and its district) and breakdown. `units` names a relation or CTE with one row per unit
    counted in the denominator (a person, a referral, a case) and the columns
        period_type, period_start, ward_code, district_code, in_numerator (0/1)
    plus one column per breakdown. `periods` names a relation with period_type, period_start,
    period_end: every period in it appears for every geography and breakdown, with 0 / 0 and a
    null value where nothing was counted (so a board sees "none", not a missing row).
    `wards` names a relation with ward_code and district_code.

    breakdowns: a list of {'name': 'sex', 'column': 'sex', 'values': ['M', 'F']}; each value
    gives a breakdown labelled '<name>:<value>'; 'persons' (everyone) is always produced.
    Units whose column is outside the listed values count for persons only.

    kind='proportion': value = 100 x / n (percent) with Wilson score limits (statistics macros),
    as percentages.
    kind='count': value = the count; no denominator, no limits.
-#}
{% macro indicator_values_from_units(indicator_id, units, periods, wards, breakdowns=[], kind='proportion',
                                     unit='percent', confidence=0.95) -%}
    {%- set labels = ["'persons'"] -%}
    {%- for b in breakdowns -%}{%- for v in b['values'] -%}
        {%- do labels.append("'" ~ b['name'] ~ ':' ~ v ~ "'") -%}
    {%- endfor -%}{%- endfor -%}
    select
        '{{ indicator_id }}' as indicator_id,
        grid.period_type,
        grid.period_start,
        grid.period_end,
        grid.geography_type,
        grid.geography_code,
        grid.breakdown,
        coalesce(counted.numerator, 0) as numerator,
        {%- if kind == 'proportion' %}
        coalesce(counted.denominator, 0) as denominator,
        {{ percentage_value('counted.numerator', 'counted.denominator') }} as value,
        {{ percentage_lower_ci('counted.numerator', 'counted.denominator', confidence) }} as lower_ci,
        {{ percentage_upper_ci('counted.numerator', 'counted.denominator', confidence) }} as upper_ci,
        {%- else %}
        cast(null as bigint) as denominator,
        {{ stat_float('coalesce(counted.numerator, 0)') }} as value,
        cast(null as {{ stat_float_type() }}) as lower_ci,
        cast(null as {{ stat_float_type() }}) as upper_ci,
        {%- endif %}
        '{{ unit }}' as unit
    from (
        select
            reported.period_type, reported.period_start, reported.period_end,
            geographies.geography_type, geographies.geography_code, breakdowns.breakdown
        from {{ periods }} as reported
        cross join (
            select distinct 'ward' as geography_type, ward_code as geography_code from {{ wards }}
            union all
            select distinct 'district' as geography_type, district_code as geography_code from {{ wards }}
        ) as geographies
        cross join (
            {%- for label in labels %}
            select {{ label }} as breakdown{{ ' union all' if not loop.last }}
            {%- endfor %}
        ) as breakdowns
    ) as grid
    left join (
        {%- set parts = [('persons', none)] -%}
        {%- for b in breakdowns -%}{%- do parts.append((b['name'], b)) -%}{%- endfor -%}
        {%- for geography_type, geography_column in [('ward', 'ward_code'), ('district', 'district_code')] -%}
        {%- set outer = loop -%}
        {%- for name, b in parts %}
        select
            period_type,
            period_start,
            '{{ geography_type }}' as geography_type,
            {{ geography_column }} as geography_code,
            {%- if b is none %}
            'persons' as breakdown,
            {%- else %}
            {{ dbt.concat(["'" ~ b['name'] ~ ":'", b['column']]) }} as breakdown,
            {%- endif %}
            sum(in_numerator) as numerator,
            count(*) as denominator
        from {{ units }}
        {%- if b is not none %}
        where {{ b['column'] }} in ({%- for v in b['values'] -%}'{{ v }}'{{ ', ' if not loop.last }}{%- endfor -%})
        {%- endif %}
        group by period_type, period_start, {{ geography_column }}{% if b is not none %}, {{ b['column'] }}{% endif %}
        {{ 'union all' if not (outer.last and loop.last) }}
        {%- endfor -%}
        {%- endfor %}
    ) as counted
        on grid.period_type = counted.period_type
        and grid.period_start = counted.period_start
        and grid.geography_type = counted.geography_type
        and grid.geography_code = counted.geography_code
        and grid.breakdown = counted.breakdown
{%- endmacro %}

{#- The complete periods an indicator reports: every calendar month / quarter (of
    `period_types`) lying wholly inside its data, where the data's first day is moved on by
    `lookback_days` (history needed before a period, e.g. 12 months for re-referrals) and
    its last day moved back by `follow_up_days` (time to observe the outcome after a
    period, e.g. 90 days for a repeat fall). `coverage` is a select returning one row with
    first_date and last_date. -#}
{% macro complete_periods(coverage, period_types=['month', 'quarter'], lookback_days=0, follow_up_days=0) -%}
    select
        calendar.period_type,
        calendar.period_start,
        calendar.period_end
    from {{ ref('int_calendar_periods') }} as calendar
    cross join ({{ coverage }}) as coverage
    where calendar.period_type in ({%- for t in period_types -%}'{{ t }}'{{ ', ' if not loop.last }}{%- endfor -%})
      and calendar.period_start >= {{ dbt.dateadd('day', lookback_days, 'coverage.first_date') }}
      and {{ dbt.dateadd('day', follow_up_days, 'calendar.period_end') }} <= coverage.last_date
{%- endmacro %}
