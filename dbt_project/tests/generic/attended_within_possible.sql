{#- School attendance rows: sessions attended never exceed sessions possible. -#}
{% test attended_within_possible(model) %}
select * from {{ model }} where attended_sessions > possible_sessions
{% endtest %}
