{#- Columns whose values must lie within [min_value, max_value] (null allowed): one node and one
    scan of the table for all of them (a dbt node costs ~40-100 ms however small its query).
    Returns each column with values outside and how many. -#}
{% test columns_between(model, columns, min_value, max_value) %}
with counts as (
    select
    {%- for column in columns %}
        count(*) filter (where {{ column }} < {{ min_value }} or {{ column }} > {{ max_value }}) as outside_{{ loop.index }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ model }}
)
{%- for column in columns %}
select '{{ column }}' as column_name, outside_{{ loop.index }} as rows_outside from counts where outside_{{ loop.index }} > 0
{{- '\nunion all' if not loop.last }}
{%- endfor %}
{% endtest %}
