{#- Indicator rows: the confidence limits bracket the value (lower <= value <= upper), with
    a tolerance for floating arithmetic. -#}
{% test value_within_limits(model, tolerance=0.000001) %}
select *
from {{ model }}
where value is not null
  and ((lower_ci is not null and lower_ci > value + {{ tolerance }})
       or (upper_ci is not null and upper_ci < value - {{ tolerance }}))
{% endtest %}
