{#- Age in completed years on a date: the year difference, less one before the birthday. -#}
{% macro age_in_years(date_of_birth, on_date) -%}
    (extract(year from {{ on_date }}) - extract(year from {{ date_of_birth }})
     - case when extract(month from {{ on_date }}) * 100 + extract(day from {{ on_date }})
                 < extract(month from {{ date_of_birth }}) * 100 + extract(day from {{ date_of_birth }})
            then 1 else 0 end)
{%- endmacro %}

{#- Postcodes compared without spaces, in capitals: 'rv1 2ab', 'RV12AB' and 'RV1 2AB' meet. -#}
{% macro postcode_key(postcode) -%}
    upper(replace({{ postcode }}, ' ', ''))
{%- endmacro %}
