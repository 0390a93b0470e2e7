{#- Columns that must hold a value in every row: one node and one scan of the table for all of
    them (a dbt node costs ~60-100 ms however small its query). Returns each column with null
    rows and how many. -#}
{% test not_null_columns(model, columns) %}
with counts as (
    select
    {%- for column in columns %}
        count(*) filter (where {{ column }} is null) as nulls_{{ loop.index }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ model }}
)
{%- for column in columns %}
select '{{ column }}' as column_name, nulls_{{ loop.index }} as null_rows from counts where nulls_{{ loop.index }} > 0
{{- '\nunion all' if not loop.last }}
{%- endfor %}
{% endtest %}
