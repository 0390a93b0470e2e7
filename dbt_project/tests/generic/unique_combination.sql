{#- No two rows share the same values in `columns` (a composite primary key). With `night` (a
    condition that holds for every row written since the last build that succeeded, e.g. the
    rows of the people a change log names), only the keys of those rows are checked, against
    the whole table: a row not written since was unique then, so a duplicate has a new row. -#}
{% test unique_combination(model, columns, night=none) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
{%- if night %}
semi join (select {{ columns | join(', ') }} from {{ model }} where {{ night }}) as night_rows
    using ({{ columns | join(', ') }})
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
