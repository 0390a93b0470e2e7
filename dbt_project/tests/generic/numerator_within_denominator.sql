{#- Proportions: the numerator never exceeds the denominator. -#}
{% test numerator_within_denominator(model) %}
select * from {{ model }} where denominator is not null and numerator > denominator
{% endtest %}
