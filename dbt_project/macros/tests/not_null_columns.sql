{#- Columns that must hold a value in every row: one node and one scan of the table for all of
    them (a dbt node costs ~60-100 ms however small its query). Returns each column with null
    rows and how many. With `staged_rows_of` (a staging model's contract), only the rows it logged
    as written since the last build that succeeded (macros/incremental/staged_rows.sql). -#}
{% test not_null_columns(model, columns, staged_rows_of=none) %}
with counts as (
    select
    {%- for column in columns %}
        count(*) filter (where {{ column }} is null) as nulls_{{ loop.index }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {% if staged_rows_of %}({{ staged_rows_written(model, staged_rows_of) }}) as written{% else %}{{ model }}{% endif %}
)
{%- for column in columns %}
select '{{ column }}' as column_name, nulls_{{ loop.index }} as null_rows from counts where nulls_{{ loop.index }} > 0
{{- '\nunion all' if not loop.last }}
{%- endfor %}
{% endtest %}
