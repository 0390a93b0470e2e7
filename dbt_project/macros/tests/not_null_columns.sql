{#- Columns that must hold a value in every row: one node for all of them (a dbt node costs
    ~60-100 ms however small its query). Returns each column with null rows and how many. One
    count per column, each filtered on `is null`: DuckDB skips every row group whose statistics
    say the column holds no null, so a clean column costs next to nothing however long the
    table's history (one scan counting every column at once read every row). -#}
{% test not_null_columns(model, columns) %}
{%- for column in columns %}
select '{{ column }}' as column_name, count(*) as null_rows from {{ model }} where {{ column }} is null having count(*) > 0
{{- '\nunion all' if not loop.last }}
{%- endfor %}
{% endtest %}
