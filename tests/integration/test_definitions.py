"""The Dagster code location loads whole, with the graph joined end to end."""

from __future__ import annotations

import dagster as dg
import pytest

pytestmark = pytest.mark.dbt_free


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


_SNAPSHOT = """
import hashlib, json, sys
if sys.argv[1] == "dbt-core first":
    import dbt.version  # dagster-dbt then finds dbt-core, as it would without the hiding
from orchestration.definitions import defs
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
import dagster_dbt.compat
repo = RepositorySnap.from_def(defs.get_repository_def())
snap = serialize_value(repo)
print(json.dumps({"dbt_core": dagster_dbt.compat.DBT_PYTHON_VERSION is not None,
                  "dbt_modules": sorted(m for m in sys.modules if m == "dbt" or m.startswith("dbt.")),
                  "assets": len(repo.asset_nodes), "checks": len(repo.asset_check_nodes or []),
                  "sha256": hashlib.sha256(snap.encode()).hexdigest()}))
"""


def test_the_definitions_are_the_same_whether_dagster_dbt_finds_dbt_core_or_not(demo_night):
    import json
    import subprocess
    import sys

    from orchestration.partnership.settings import PROJECT_ROOT

    # Two fresh processes (in parallel): the code location as every process loads it (dbt-core hidden
    # from dagster-dbt), and with dbt-core imported first. Their whole snapshots (assets and their
    # metadata, checks, lineage, jobs, schedules, sensors: what the UI shows) are the same.
    procs = {mode: subprocess.Popen([sys.executable, "-c", _SNAPSHOT, mode], cwd=PROJECT_ROOT, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for mode in ("as loaded", "dbt-core first")}
    out = {}
    for mode, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-3000:]
        out[mode] = json.loads(stdout.strip().splitlines()[-1])
    hidden, core = out["as loaded"], out["dbt-core first"]
    assert not hidden["dbt_core"] and hidden["dbt_modules"] == []
    assert core["dbt_core"] and "dbt.contracts.results" in core["dbt_modules"]
    assert hidden["assets"] > 50 and hidden["checks"] > 100
    assert hidden == {**core, "dbt_core": False, "dbt_modules": []}
