{#- The people whose rows of int_person_events a build replaced, for the models that group a
    person's records over time (int_falls_episodes, fct_falls_pathway_events): each rebuilds
    only those people. Written by replace_by_key (config `log_changed_people`), with one row
    with no person when int_person_events was built whole; emptied by the runner after a
    build that succeeded (partnership/dbt/runner.py, record_build), so a failed build leaves
    them to the next night's. -#}
{% macro changed_people_log() -%}
    {{ return(api.Relation.create(database=target.database, schema='ops', identifier='dbt_changed_people')) }}
{%- endmacro %}

{#- Pre-hook of the model that writes the log: the log exists, and a build of the whole
    model logs everyone. -#}
{% macro log_everyone_when_built_whole() -%}
    create schema if not exists {{ changed_people_log().schema }};
    create table if not exists {{ changed_people_log() }} (person_id varchar);
    {%- if not is_incremental() %}
    insert into {{ changed_people_log() }} values (null);
    {%- endif %}
{%- endmacro %}

{#- In an incremental build of a model grouped by person: the people to build again, as a
    query of person_id (everyone when the log says so, or the model's input was built whole). -#}
{% macro people_to_rebuild(events) -%}
{%- set everyone = execute and run_query(
    "select count(*) from " ~ changed_people_log() ~ " where person_id is null").columns[0].values()[0] > 0 -%}
{%- if everyone -%}
select person_id from {{ events }} where person_id is not null union select person_id from {{ this }}
{%- else -%}
select distinct person_id from {{ changed_people_log() }}
{%- endif -%}
{%- endmacro %}

{#- A person's id as an integer (int_person_events.person_key), for the models that read the
    events of some people: DuckDB filters a table scan on an integer column with the join's
    hash of the wanted values before it reads the other columns, not on a text column, so a
    filter on person_id alone reads every column of the whole history. The value depends on
    DuckDB's hash function: its version is part of the project fingerprint. -#}
{% macro person_key(person_id) -%}
    case when {{ person_id }} is not null then hash({{ person_id }}) end
{%- endmacro %}

{#- The rows of the people in `people` (a relation or CTE of person_id): filtered on the key
    first, then on the id itself (two ids may share a key). -#}
{% macro of_people(people, alias=none) -%}
{%- set prefix = alias ~ '.' if alias else '' -%}
{{ prefix }}person_key in (select {{ person_key(people ~ '.person_id') }} from {{ people }})
    and {{ prefix }}person_id in (select {{ people }}.person_id from {{ people }})
{%- endmacro %}
