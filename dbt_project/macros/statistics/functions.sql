{#-
    The statistics macros as functions of the warehouse (DuckDB macros in schema `stats`), so
    that the release engine computes a release's rates, percentages and limits from the counts
    it publishes with the very formulas the indicator models use: rendered from the same macros,
    never written a second time. Created by the post-hook of marts.fct_indicator_bands
    (the release engine reads both), replaced on every build of it.

        stats.percentage_value(x, n), stats.percentage_lower_ci(x, n), stats.percentage_upper_ci(x, n)
            a proportion as the indicators publish it (percentage_* macros: Wilson score, 95%)
        stats.dsr_value(x, n, w), stats.dsr_lower_ci(x, n, w), stats.dsr_upper_ci(x, n, w)
            aggregates over band rows (count, person-years, standard weight): the directly
            standardised rate per 100,000 with 95% Dobson limits, null below 10 events, as
            FALLS-01 (dsr_value, dobson_lower / dobson_upper)
-#}
{% macro statistics_functions_sql(schema='stats') -%}
    {%- set value = dsr_value('x', 'n', 'w', 100000) -%}
    {%- set variance = dsr_variance('x', 'n', 'w', 100000) -%}
    {%- set total = dsr_total_count('x') -%}
    {{ return([
        'create schema if not exists ' ~ schema,
        'create or replace macro ' ~ schema ~ '.percentage_value(x, n) as ' ~ percentage_value('x', 'n'),
        'create or replace macro ' ~ schema ~ '.percentage_lower_ci(x, n) as ' ~ percentage_lower_ci('x', 'n', 0.95),
        'create or replace macro ' ~ schema ~ '.percentage_upper_ci(x, n) as ' ~ percentage_upper_ci('x', 'n', 0.95),
        'create or replace macro ' ~ schema ~ '.dsr_value(x, n, w) as ' ~ value,
        'create or replace macro ' ~ schema ~ '.dsr_lower_ci(x, n, w) as ' ~ dobson_lower(total, value, variance, 0.95),
        'create or replace macro ' ~ schema ~ '.dsr_upper_ci(x, n, w) as ' ~ dobson_upper(total, value, variance, 0.95),
    ]) }}
{%- endmacro %}

{#- Post-hook: run the statements above (one at a time); renders nothing itself. -#}
{% macro create_statistics_functions() -%}
    {%- if execute -%}
        {%- for statement in statistics_functions_sql() -%}
            {%- do run_query(statement) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
