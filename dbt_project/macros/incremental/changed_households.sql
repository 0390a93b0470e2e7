{#- In an incremental build of a model grouped by household and quarter (int_family_quarters):
    whether every household is to be built again (linkage logged no earlier members, or
    int_person_events was built whole), else the households to build again as a query of
    household_id: those whose members linkage changed (linkage.household_changes) and those
    with a member whose events int_person_events rewrote (changed_people_log()). A household's
    rows depend on its members' spells and events alone; both logs are emptied by the runner
    only after a build that succeeded (partnership/dbt/runner.py, record_build). -#}
{% macro every_household_changed() -%}
{%- set sql -%}
select count(*) from (
    select household_id from {{ ref('stg_linkage__household_changes') }} where household_id is null
    union all
    select person_id from {{ changed_people_log() }} where person_id is null
)
{%- endset -%}
{{ return(execute and run_query(sql).columns[0].values()[0] > 0) }}
{%- endmacro %}

{% macro households_to_rebuild(household_members) -%}
select household_id from {{ ref('stg_linkage__household_changes') }} where household_id is not null
union
select household_id from {{ household_members }}
where person_id in (select person_id from {{ changed_people_log() }})
{%- endmacro %}
