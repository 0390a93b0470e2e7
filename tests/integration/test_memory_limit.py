"""PARTNERSHIP_MEMORY_LIMIT bounds every DuckDB of the night: the warehouse connections, dbt's and linkage's working
database (unless PARTNERSHIP_LINKAGE_MEMORY_LIMIT gives linkage its own). DuckDB's own default (80% of the machine)
let a 25-million-row night's dbt build hold 11 GiB."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import duckdb
import pytest

import orchestration.partnership.warehouse.connection as warehouse
from orchestration.partnership.dbt.runner import dbt_executable
from orchestration.partnership.settings import PROJECT_ROOT
from tests.conftest import TEST_KEY


def duckdb_says(limit: str) -> str:
    """How DuckDB itself shows a limit it was given (the oracle: no parsing of ours)."""
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '{limit}'")
        return con.execute("select current_setting('memory_limit')").fetchall()[0][0]


@pytest.mark.parametrize("given,expected", [("6GB", "6GB"), ("512mb", "512MB"), (" 1.5 GiB ", "1.5GiB"), ("2tb", "2TB")])
def test_a_size_is_accepted_as_duckdb_reads_it(monkeypatch, given, expected):
    monkeypatch.setenv(warehouse.MEMORY_LIMIT_ENV, given)
    assert warehouse.memory_limit() == expected
    duckdb_says(expected)  # DuckDB takes it


@pytest.mark.parametrize("given", ["lots", "4", "0GB", "-1GB", "4 parsecs", "80%", "4GB; drop table x"])
def test_anything_else_is_refused_naming_the_setting(monkeypatch, given):
    monkeypatch.setenv(warehouse.MEMORY_LIMIT_ENV, given)
    with pytest.raises(warehouse.SettingError, match=r"PARTNERSHIP_MEMORY_LIMIT=.*is not a memory size"):
        warehouse.memory_limit()


def test_unset_is_the_default(monkeypatch):
    monkeypatch.delenv(warehouse.MEMORY_LIMIT_ENV, raising=False)
    assert warehouse.memory_limit() == warehouse.DEFAULT_MEMORY_LIMIT


def test_warehouse_connections_carry_the_limit(monkeypatch, tmp_path):
    monkeypatch.setenv(warehouse.MEMORY_LIMIT_ENV, "1GB")
    db = tmp_path / "warehouse.duckdb"
    with warehouse.connect(db) as con:
        assert con.execute("select current_setting('memory_limit')").fetchall()[0][0] == duckdb_says("1GB")
    with warehouse.connect(db, read_only=True) as con:
        assert con.execute("select current_setting('memory_limit')").fetchall()[0][0] == duckdb_says("1GB")
    monkeypatch.setenv(warehouse.MEMORY_LIMIT_ENV, "a lot")
    with pytest.raises(warehouse.SettingError):
        with warehouse.connect(tmp_path / "other.duckdb"):
            pass
    assert not (tmp_path / "other.duckdb").exists()  # refused before anything was opened


def test_the_profile_falls_back_to_the_same_default():
    text = (PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text()
    found = re.findall(r"env_var\('PARTNERSHIP_MEMORY_LIMIT', '([^']+)'\)", text)
    assert found == [warehouse.DEFAULT_MEMORY_LIMIT]


def test_dbt_runs_with_the_limit(tmp_path):
    """A real dbt invocation on the project's profile reports the limit it was given."""
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs", ".*"))
    env = {**os.environ, "PARTNERSHIP_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
           warehouse.MEMORY_LIMIT_ENV: "768MB", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run([dbt_executable(), "show", "--inline", "select current_setting('memory_limit') as m",
                           "--output", "json", "--log-format", "text", "--project-dir", str(project),
                           "--profiles-dir", str(project), "--target-path", str(tmp_path / "target"),
                           "--log-path", str(tmp_path / "logs")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f'"m": "{duckdb_says("768MB")}"' in done.stdout


def test_linkage_takes_its_own_setting_else_the_nights(monkeypatch):
    monkeypatch.delenv(warehouse.LINKAGE_MEMORY_LIMIT_ENV, raising=False)
    monkeypatch.setenv(warehouse.MEMORY_LIMIT_ENV, "3GB")
    assert warehouse.memory_limit(warehouse.LINKAGE_MEMORY_LIMIT_ENV) == "3GB"
    monkeypatch.delenv(warehouse.MEMORY_LIMIT_ENV)
    assert warehouse.memory_limit(warehouse.LINKAGE_MEMORY_LIMIT_ENV) == warehouse.DEFAULT_MEMORY_LIMIT
    monkeypatch.setenv(warehouse.LINKAGE_MEMORY_LIMIT_ENV, " 6 gib")
    assert warehouse.memory_limit(warehouse.LINKAGE_MEMORY_LIMIT_ENV) == "6GiB"
    assert warehouse.memory_limit() == warehouse.DEFAULT_MEMORY_LIMIT  # the night's own is untouched
    monkeypatch.setenv(warehouse.LINKAGE_MEMORY_LIMIT_ENV, "80%")
    with pytest.raises(warehouse.SettingError, match=r"PARTNERSHIP_LINKAGE_MEMORY_LIMIT='80%' is not a memory size"):
        warehouse.memory_limit(warehouse.LINKAGE_MEMORY_LIMIT_ENV)


@pytest.mark.parametrize("setting", ["PARTNERSHIP_MEMORY_LIMIT", "PARTNERSHIP_LINKAGE_MEMORY_LIMIT"])
def test_a_night_with_a_bad_limit_fails_before_anything(tmp_path, setting):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTNERSHIP_", "DAGSTER_"))}
    env.update(PARTNERSHIP_DATA_DIR=str(tmp_path / "data"), PARTNERSHIP_PSEUDONYM_KEY=TEST_KEY)
    env[setting] = "plenty"
    done = subprocess.run([sys.executable, "-m", "orchestration.partnership.cli", "run"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{setting}='plenty' is not a memory size" in done.stderr
    assert not (tmp_path / "data").exists()
