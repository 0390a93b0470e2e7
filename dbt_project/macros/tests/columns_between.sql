{#- Columns whose values must lie within [min_value, max_value] (null allowed): one node for all
    of them (a dbt node costs ~40-100 ms however small its query). Returns each column with
    values outside and how many. One count per column, each filtered on the bounds: DuckDB skips
    every row group whose statistics put the column within them. -#}
{% test columns_between(model, columns, min_value, max_value) %}
{%- for column in columns %}
select '{{ column }}' as column_name, count(*) as rows_outside
from {{ model }}
where {{ column }} < {{ min_value }} or {{ column }} > {{ max_value }}
having count(*) > 0
{{- '\nunion all' if not loop.last }}
{%- endfor %}
{% endtest %}
