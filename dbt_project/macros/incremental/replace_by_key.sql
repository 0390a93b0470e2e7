{#- Incremental strategy `replace_by_key`: the model's incremental select returns the rows to
    write and, flagged `_deleted`, the rows that no longer exist; every stored row with the key
    of a returned row is deleted, then the rows not flagged are inserted. So one statement
    inserts new rows, replaces changed ones and removes gone ones (dbt's delete+insert cannot
    remove a row that has no replacement). The flag column is not stored: the insert writes
    the table's own columns (on_schema_change stays `ignore`; a change of the model's code
    changes the project fingerprint, and the night then builds with --full-refresh). With config
    `log_changed_people`, the people of the rows replaced or removed and of the rows inserted
    are appended to changed_people_log() first; with `log_staged_rows`, the rows replaced or removed
    and the rows inserted to staged_rows_log(). With config `hash_key` (an integer column of the
    model that is a function of its unique key: staging's key_hash), the stored rows with an
    incoming key are found on that column first: DuckDB filters a table scan on one integer
    column with the join's hash of the wanted values, and on a text key it reads the whole key
    column and matches it row by row. -#}
{% macro get_incremental_replace_by_key_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set keys = arg_dict['unique_key'] -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set on_keys -%}
    {% for key in keys %}incoming.{{ key }} = stored.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
    {%- endset -%}
    {%- set hash_key = config.get('hash_key') -%}
    {%- set stored_rows -%}
    {%- if hash_key -%}
    (select rowid as _rowid, * from {{ target }} where {{ hash_key }} in (select {{ hash_key }} from {{ source }}))
    {%- else -%}
    {{ target }}
    {%- endif -%}
    {%- endset -%}
    {%- if config.get('log_changed_people') %}
    insert into {{ changed_people_log() }}
    select stored.person_id from {{ stored_rows }} as stored semi join {{ source }} as incoming on {{ on_keys }}
    where stored.person_id is not null
    union
    select person_id from {{ source }} where not _deleted and person_id is not null;
    {% endif %}
    {%- if config.get('log_staged_rows') %}
    {{ log_staged_rows(stored_rows, source, on_keys) }}
    {% endif %}
    {%- if hash_key %}
    delete from {{ target }}
    where rowid in (select stored._rowid from {{ stored_rows }} as stored semi join {{ source }} as incoming on {{ on_keys }});
    {%- else %}
    delete from {{ target }} as stored
    using {{ source }} as incoming
    where {{ on_keys }};
    {%- endif %}

    insert into {{ target }} ({{ cols }})
    select {{ cols }} from {{ source }} where not _deleted
{%- endmacro %}

{#- A person-keyed model's rows for replace_by_key: all of them in a full build; in an incremental
    one, the rebuilt people's rows and each rebuilt person flagged `_deleted`, so a person left
    with no row loses their stored ones. -#}
{% macro rows_of_people(rows, people) -%}
{%- if is_incremental() %}
select *, false as _deleted from {{ rows }}
union all by name
select person_id, true as _deleted from {{ people }}
{%- else %}
select * from {{ rows }}
{%- endif %}
{%- endmacro %}
