{#- How staging reads a contract's valid rows: the two delivery modes of the contracts.
    Deliveries are ordered by their id in ops.deliveries (the order they were registered). -#}

{#- Incremental extracts: a record sent again in a later delivery is a correction, so the
    latest delivery of each key stands (and within one delivery the last row). Selects every
    column of the relation; the caller renames.

    The staging models of these extracts are incremental tables (strategy `replace_by_key`,
    unique key = the business key), so that a night reads only what its new deliveries touch
    instead of ranking the whole history again. A delivery's valid rows never change once
    accepted; whole deliveries only arrive (any id: one held back by a crash comes later) or go
    (retention purges). So a key's latest record can change only when a delivery the table has
    not seen holds a row of it, or when the delivery of its stored row is gone: exactly the keys
    `staged_keys_touched` finds. For those keys only, the latest record is ranked again over
    every row the extract still holds (so an older delivery's row takes over when the latest is
    purged), and a key with no row left is removed (`staged_rows`). Every other key's stored
    row is still its latest: its rows are a subset of those it had when stored, and the stored
    one is among them. The latest record is the one no later row of its key supersedes; only
    the keys sent more than once are ranked. The model reads its extract through a CTE declared
    `not materialized`: read several times, DuckDB would otherwise copy the whole extract first,
    even on a night that touches no key. -#}
{% macro latest_record_per_key(relation, key_columns) -%}
    {%- set keys = key_columns | join(', ') %}
    {#- In an incremental build, only the rows of the touched keys (staged_keys_touched). #}
    {%- set rows = 'staged_rows_touched' if is_incremental() else relation %}
    select src.*
    from {{ rows }} as src
    anti join (
        -- The rows a later row of the same key supersedes. Only keys sent more than once are
        -- ranked: the window sorts their few rows and keys, not every row with every column
        -- (a full build of the admissions at 25 million rows: most of its time).
        select _delivery_id, _row_number
        from (
            select
                ranked._delivery_id,
                ranked._row_number,
                row_number() over (
                    partition by {% for key in key_columns %}ranked.{{ key }}{{ ', ' if not loop.last }}{% endfor %}
                    order by ranked._delivery_id desc, ranked._row_number desc
                ) as _recency
            from {{ rows }} as ranked
            semi join (
                select {{ keys }} from {{ rows }}
                group by {{ keys }}
                having count(*) > 1
            ) as repeated
                on {% for key in key_columns %}ranked.{{ key }} is not distinct from repeated.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        ) as later
        where _recency > 1
    ) as superseded using (_delivery_id, _row_number)
{% endmacro %}

{#- The CTEs `staged_keys_touched` and `staged_rows_touched` (with the trailing comma; nothing in
    a full build): the keys with a row in a delivery the staged table holds no row of, and the
    keys whose stored row's delivery the extract no longer holds; then the rows an incremental
    build ranks and reads whole. Which deliveries arrived or went is worked out on the two
    tables' delivery ids first, so only those deliveries' rows are read for their keys (the rows
    of a table are stored in delivery order, and DuckDB skips the row groups outside the ids
    joined). A delivery all of whose rows were superseded has no stored row, so its keys are
    looked at again each night: more work, same result.
    When no delivery went (every night but a purge's), the rows ranked are the arrived
    deliveries' rows and the stored row of each touched key: every other row the extract holds
    of the key was there when the stored row was found to be its latest, so it cannot win now.
    The stored rows are found on key_hash first (an integer: DuckDB filters the scan on it before
    it reads another column; on a text key it reads and matches the whole key column). When a
    delivery went, every row the extract holds of the touched keys is ranked (an older
    delivery's row takes over from a purged one). Each way is a join whose other side is empty
    when it does not apply, and DuckDB then skips the scan. -#}
{% macro staged_keys_touched(relation, key_columns) -%}
{%- if is_incremental() %}
{%- set keys = key_columns | join(', ') %}
delivery_ids_sent as materialized (select distinct _delivery_id from {{ relation }}),

delivery_ids_stored as materialized (select distinct delivery_id from {{ this }}),

delivery_ids_arrived as materialized (

    select _delivery_id from delivery_ids_sent
    except
    select delivery_id from delivery_ids_stored

),

delivery_ids_gone as materialized (

    select delivery_id from delivery_ids_stored
    except
    select _delivery_id from delivery_ids_sent

),

staged_keys_touched as materialized (

    select {{ keys }}
    from {{ relation }} as src
    semi join delivery_ids_arrived as arrived using (_delivery_id)

    union

    select {{ keys }}
    from {{ this }} as stored
    semi join delivery_ids_gone as gone using (delivery_id)

),

stored_rows_touched as materialized (

    select stored.delivery_id as _delivery_id, stored.row_number as _row_number
    from {{ this }} as stored
    semi join (
        select {{ keys }} from staged_keys_touched
        where not exists (select 1 from delivery_ids_gone)
    ) as touched using ({{ keys }})
    where stored.key_hash in (select {{ staged_key_hash(key_columns) }} from staged_keys_touched)

),

staged_rows_touched as materialized (

    -- No delivery went: the arrived deliveries' rows and the stored row of each touched key.
    select src.* from {{ relation }} as src
    semi join (
        select _delivery_id from delivery_ids_arrived
        where not exists (select 1 from delivery_ids_gone)
    ) as arrived using (_delivery_id)

    union all

    select src.* from {{ relation }} as src semi join stored_rows_touched using (_delivery_id, _row_number)

    union all

    -- A delivery went: every row the extract holds of the touched keys.
    select src.* from {{ relation }} as src
    semi join (
        select {{ keys }} from staged_keys_touched
        where exists (select 1 from delivery_ids_gone)
    ) as touched using ({{ keys }})

),
{%- endif %}
{%- endmacro %}

{#- The key of a staged row as one integer (column key_hash of the incremental staging tables;
    replace_by_key's `hash_key`). Depends on DuckDB's hash function, whose version is part of the
    project fingerprint. -#}
{% macro staged_key_hash(key_columns) -%}
hash({{ key_columns | join(', ') }})
{%- endmacro %}

{#- The model's rows with their key_hash: all of them in a full build; in an incremental one,
    those of the touched keys, and each touched key with no row left flagged `_deleted`
    (replace_by_key removes it). -#}
{% macro staged_rows(renamed, relation, key_columns) -%}
{%- if is_incremental() %}
select *, {{ staged_key_hash(key_columns) }} as key_hash, false as _deleted from {{ renamed }}
union all by name
select {{ key_columns | join(', ') }}, {{ staged_key_hash(key_columns) }} as key_hash, true as _deleted
from staged_keys_touched
anti join staged_rows_touched using ({{ key_columns | join(', ') }})
{%- else %}
select *, {{ staged_key_hash(key_columns) }} as key_hash from {{ renamed }}
{%- endif %}
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
