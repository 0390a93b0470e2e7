{#- Age groups for indicator breakdowns. `bands` is a list of (label, first age) in
    ascending order; the last band is open-ended. e.g.
    age_group('age', [('65-79', 65), ('80+', 80)]) -> case when age >= 80 then '80+' when age >= 65 then '65-79' end -#}
{% macro age_group(age_expr, bands) -%}
    (case
    {%- for label, first_age in bands | reverse %}
        when {{ age_expr }} >= {{ first_age }} then '{{ label }}'
    {%- endfor %}
    end)
{%- endmacro %}

{#- The age bands each indicator family is broken down by (labels as in breakdown 'age:<label>'). -#}
{% macro falls_age_bands() -%}
    {{ return([('65-79', 65), ('80+', 80)]) }}
{%- endmacro %}

{#- Children in Need census age groups at referral. -#}
{% macro children_age_bands() -%}
    {{ return([('under 1', 0), ('1-4', 1), ('5-9', 5), ('10-15', 10), ('16+', 16)]) }}
{%- endmacro %}

{#- Life stages for adaptations: children, working age, older people. -#}
{% macro life_stage_age_bands() -%}
    {{ return([('0-17', 0), ('18-64', 18), ('65+', 65)]) }}
{%- endmacro %}

{#- Labels of a band list, for breakdown specifications. -#}
{% macro band_labels(bands) -%}
    {%- set labels = [] -%}
    {%- for label, first_age in bands -%}{%- do labels.append(label) -%}{%- endfor -%}
    {{ return(labels) }}
{%- endmacro %}
