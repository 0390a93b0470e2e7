{#- Generic data tests used by the reference seeds (seeds/reference/*.yml).
    Portable SQL; each returns the failing rows. Documented in statistics.yml. -#}

{#- Every non-null value lies in [min_value, max_value]; either bound may be
    omitted. Bounds are SQL expressions, e.g. 0, "cast('2022-01-01' as date)". -#}
{% test value_between(model, column_name, min_value=none, max_value=none) %}
select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} is not null
  and (
    {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% else %} 1 = 0{% endif %}
    or
    {%- if max_value is not none %} {{ column_name }} > {{ max_value }}{% else %} 1 = 0{% endif %}
  )
{% endtest %}

{#- The column's total equals `expected` (e.g. ESP2013 weights sum to 100,000). -#}
{% test column_sum_equals(model, column_name, expected) %}
select total
from (select sum({{ column_name }}) as total from {{ model }}) totals
where total is null or total <> {{ expected }}
{% endtest %}
