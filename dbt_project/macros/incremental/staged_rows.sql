{#- The staged rows each staging model of a person-level extract wrote or removed since the last
    build that succeeded, for int_person_events: it compares its stored records with staging
    only on these rows instead of the whole history. Config `log_staged_rows` (the model's
    contract id) turns it on. replace_by_key logs the key (delivery, row) of every stored row it
    replaces or removes and of every row it inserts; a model built whole (a table, or an
    incremental one built whole) logs its contract with no row: int_person_events then compares
    every record of that contract. Emptied by the runner after a build that succeeded
    (partnership/dbt/runner.py, record_build), so a failed build leaves the rows to the next. -#}
{% macro staged_rows_log() -%}
    {{ return(api.Relation.create(database=target.database, schema='ops', identifier='dbt_changed_staged_rows')) }}
{%- endmacro %}

{% macro create_staged_rows_log() -%}
    create schema if not exists {{ staged_rows_log().schema }};
    create table if not exists {{ staged_rows_log() }} (contract_id varchar, delivery_id bigint, row_number bigint);
{%- endmacro %}

{#- Pre-hook of the staging models with `log_staged_rows` (the log is created by the project's
    on-run-start: two models running at once must not both create it). -#}
{% macro log_staged_rows_when_built_whole() -%}
    {%- if not is_incremental() %}
    insert into {{ staged_rows_log() }} values ('{{ config.require('log_staged_rows') }}', null, null);
    {%- endif %}
{%- endmacro %}

{#- In replace_by_key, before it writes: the rows it is about to replace or remove and to insert. -#}
{% macro log_staged_rows(target, source, on_keys) -%}
    insert into {{ staged_rows_log() }}
    select '{{ config.require('log_staged_rows') }}', stored.delivery_id, stored.row_number
    from {{ target }} as stored semi join {{ source }} as incoming on {{ on_keys }}
    union all
    select '{{ config.require('log_staged_rows') }}', delivery_id, row_number from {{ source }} where not _deleted;
{%- endmacro %}

{#- In int_person_events' incremental build: the contracts whose every record is to be compared
    (logged with no row; all of them when the log is missing). -#}
{% macro contracts_staged_whole(contracts) -%}
{%- if not execute -%}
    {{ return([]) }}
{%- endif -%}
{%- set log = staged_rows_log() -%}
{%- if adapter.get_relation(database=log.database, schema=log.schema, identifier=log.identifier) is none -%}
    {{ return(contracts) }}
{%- endif -%}
{%- set found = run_query("select distinct contract_id from " ~ log ~ " where delivery_id is null").columns[0].values() -%}
{{ return(contracts | select('in', found) | list) }}
{%- endmacro %}

{#- A test's rows of a staging model with `log_staged_rows` (test `unique_combination`,
    argument `staged_rows_of`): the rows written since the last build that
    succeeded, as logged; every row when the extract was logged whole (the table was built
    whole) or the log is missing. A row not written since was tested then and has not changed. -#}
{% macro staged_rows_written(model, contract) -%}
{%- if contract in contracts_staged_whole([contract]) -%}
select * from {{ model }}
{%- else -%}
select * from {{ model }}
semi join (select delivery_id, row_number from {{ staged_rows_log() }} where delivery_id is not null) as logged
    using (delivery_id, row_number)
{%- endif -%}
{%- endmacro %}
