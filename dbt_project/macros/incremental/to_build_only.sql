{#- In an incremental build of a model that keeps a `to_build` CTE of record keys (contract_id,
    delivery_id, row_number; int_person_events): the rows of a staging CTE that are to be built,
    so that a night reads whole only the records it writes. In a full build: the CTE itself. -#}
{% macro to_build_only(cte, contract_id) -%}
{%- if is_incremental() -%}
(select {{ cte }}.* from {{ cte }}
 semi join (select delivery_id, row_number from to_build where contract_id = '{{ contract_id }}') as build
 using (delivery_id, row_number))
{%- else -%}
{{ cte }}
{%- endif -%}
{%- endmacro %}
