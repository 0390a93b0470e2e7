"""The Dagster code location loads whole, with the graph joined end to end."""

from __future__ import annotations

import dagster as dg


def test_the_definitions_load_with_ingestion_dbt_and_release_assets_joined(demo_night):
    from orchestration.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "ops/deliveries" in keys
    assert "valid/riverside_acute__emergency_admissions" in keys
    assert "marts/fct_indicator_values" in keys
    assert "releases/falls-board" in keys
    graph = defs.resolve_asset_graph()
    # dbt's sources are the ingestion assets themselves: the graph joins without glue.
    staging = dg.AssetKey(["staging", "stg_riverside_acute__emergency_admissions"])
    assert dg.AssetKey(["valid", "riverside_acute__emergency_admissions"]) in graph.get(staging).parent_keys
    assert dg.AssetKey(["marts", "fct_indicator_values"]) in graph.get(dg.AssetKey(["releases", "falls-board"])).parent_keys


def test_the_nightly_schedule_runs_the_nightly_job_at_two_in_the_morning_london_time(demo_night):
    from orchestration.definitions import defs

    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "Europe/London"
    assert schedule.job_name == "nightly"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def("nightly")
    assert job.executor_def.name == "in_process"


def test_the_dbt_resource_starts_no_dbt_in_the_dagster_process(demo_night):
    import inspect
    from importlib.metadata import version

    from dagster_dbt import DbtCliResource
    from packaging.version import Version

    from orchestration.defs.dbt.assets import dbt_resource

    # dagster-dbt's cli() asks these two before it launches dbt; the overrides answer without a
    # `dbt --version` start-up or a dbt adapter built in this process (the project loaded, every
    # macro parsed). Were an upgrade to rename them, the overrides would silently stop working.
    source = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in source and "self._initialize_dbt_core_adapter(" in source
    assert dbt_resource._cli_version == Version(version("dbt-core"))
    assert dbt_resource._initialize_dbt_core_adapter(["build"]) is None
