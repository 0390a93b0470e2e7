{#- How staging reads a contract's valid rows: the two delivery modes of the contracts.
    Deliveries are ordered by their id in ops.deliveries (the order they were registered). -#}

{#- Incremental extracts: a record sent again in a later delivery is a correction, so the
    latest delivery of each key stands (and within one delivery the last row). Selects every
    column of the relation; the caller renames. -#}
{% macro latest_record_per_key(relation, key_columns) -%}
    select *
    from (
        select
            src.*,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by src._delivery_id desc, src._row_number desc
            ) as _recency
        from {{ relation }} as src
    ) as ranked
    where _recency = 1
{%- endmacro %}

{#- Full-snapshot extracts: each delivery replaces the whole extract, so only the rows of
    the latest accepted delivery stand. -#}
{% macro latest_snapshot(relation) -%}
    select src.*
    from {{ relation }} as src
    where src._delivery_id = (select max(latest._delivery_id) from {{ relation }} as latest)
{%- endmacro %}

{#- Sex recoded to M / F / U from the NHS Data Dictionary person stated gender code
    (1 male, 2 female, anything else not known). -#}
{% macro sex_from_nhs_code(column) -%}
    case {{ column }} when '1' then 'M' when '2' then 'F' else 'U' end
{%- endmacro %}

{#- Sex as M / F / U from an M / F / U (or blank) column. -#}
{% macro sex_mfu(column) -%}
    case upper({{ column }}) when 'M' then 'M' when 'F' then 'F' else 'U' end
{%- endmacro %}

{#- Y / N flags as booleans (null stays null). -#}
{% macro yes_no_flag(column) -%}
    case upper({{ column }}) when 'Y' then true when 'N' then false end
{%- endmacro %}
