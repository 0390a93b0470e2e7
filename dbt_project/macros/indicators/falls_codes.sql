{#- True when an ICD-10 code's first three characters fall in a code list of the
    icd10_code_ranges seed (e.g. 'falls_W00_W19'). A scalar EXISTS over the seed. -#}
{% macro icd10_in_list(code_expr, code_list) -%}
    exists (
        select 1 from {{ ref('icd10_code_ranges') }} as code_ranges
        where code_ranges.code_list = '{{ code_list }}'
          and substring({{ code_expr }}, 1, 3) between code_ranges.range_start and code_ranges.range_end
    )
{%- endmacro %}
