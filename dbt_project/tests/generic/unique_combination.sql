{#- No two rows share the same values in `columns` (a composite primary key). With `night` (a
    condition that holds for every row written since the last build that succeeded, e.g. the
    rows of the people a change log names), or `staged_rows_of` (a staging model's contract: the
    rows it logged as written, macros/incremental/staged_rows.sql), only the keys of those rows
    are checked, against the whole table: a row not written since was unique then, so a
    duplicate has a new row. With `hash_key` (an integer column that is a function of `columns`,
    staging's key_hash), the table's rows are first filtered on it: DuckDB then reads the key
    columns only of the rows whose hash matches. -#}
{% test unique_combination(model, columns, night=none, staged_rows_of=none, hash_key=none) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
{%- if night %}
semi join (select {{ columns | join(', ') }} from {{ model }} where {{ night }}) as night_rows
    using ({{ columns | join(', ') }})
{%- elif staged_rows_of %}
semi join (select {{ columns | join(', ') }} from ({{ staged_rows_written(model, staged_rows_of) }}) as written) as night_rows
    using ({{ columns | join(', ') }})
{%- if hash_key %}
where {{ hash_key }} in (select written.{{ hash_key }} from ({{ staged_rows_written(model, staged_rows_of) }}) as written)
{%- endif %}
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
