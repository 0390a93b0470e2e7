"""An incremental night builds only what changed, and ends exactly where a full build ends.

Night 1 runs without the last day's nightly files; night 2 lands them and runs again. Night 2's
dbt step rebuilds only the models downstream of sources whose data changed (the six nightly
extracts and the person index) and keeps the rest. Then the whole project is built again with
`dbt build --full-refresh` on a copy of night 2's warehouse: every table dbt built must be the
same, row for row. A third night with nothing new rebuilds nothing and still publishes."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration.partnership.contracts import load_contracts
from orchestration.partnership.settings import PROJECT_ROOT
from tests.conftest import DEMO_AS_OF, use_data_dir

DBT_SCHEMAS = ("staging", "intermediate", "marts", "reference")
NOT_REBUILT = "not rebuilt"


def _last_nightly_files(landing: Path, as_of: date) -> list[Path]:
    last = (as_of - timedelta(days=1)).strftime("%Y%m%d")
    out = []
    for c in load_contracts(PROJECT_ROOT / "contracts" / "agencies").values():
        if c.delivery.cadence == "nightly":
            out += sorted((landing / c.agency / c.extract).glob(f"*_{last}.*"))
    return out


def _dbt_assets(result) -> dict[str, dict]:
    """Each dbt asset materialized by the run, with its metadata."""
    out = {}
    for ev in result.get_asset_materialization_events():
        mat = ev.event_specific_data.materialization
        if mat.asset_key.path[0] in DBT_SCHEMAS:
            out["/".join(mat.asset_key.path)] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return out


def _tables(warehouse: Path) -> dict[str, list]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.execute(
            f"""select table_schema, table_name from information_schema.tables
                where table_schema in ({",".join("?" for _ in DBT_SCHEMAS)}) order by 1, 2""", DBT_SCHEMAS).fetchall()
        return {f"{s}.{t}": con.execute(f'select * from "{s}"."{t}" order by all').fetchall() for s, t in names}


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory, saved_environment):
    from orchestration.partnership.cli import run_night
    from orchestration.partnership.generator import generate

    data_dir = tmp_path_factory.mktemp("incremental")
    settings = use_data_dir(data_dir, run_date=DEMO_AS_OF)
    generate(data_dir, preset="small", seed=42, as_of=DEMO_AS_OF)
    later = data_dir / "later"
    held = _last_nightly_files(settings.landing_dir, DEMO_AS_OF)
    assert len(held) >= 6
    for p in held:
        dest = later / p.relative_to(settings.landing_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(p, dest)  # keeps the file's time: it arrives as it would have
    first = run_night(settings, quiet=True)
    assert first.success
    for p in held:
        os.rename(later / p.relative_to(settings.landing_dir), p)
    settings = use_data_dir(data_dir, run_date=DEMO_AS_OF + timedelta(days=1))
    second = run_night(settings, quiet=True)
    return settings, first, second, held


def test_the_first_night_builds_everything(two_nights):
    _, first, _, _ = two_nights
    built = _dbt_assets(first)
    assert built and not [k for k, m in built.items() if NOT_REBUILT in str(m.get("dbt", ""))]


def test_the_second_night_rebuilds_only_what_its_new_deliveries_and_the_person_index_reach(two_nights):
    settings, _, second, held = two_nights
    assert second.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        new = con.execute(f"""select count(*) from ops.deliveries where status = 'accepted' and file_name in
                              ({",".join("?" for _ in held)})""", [p.name for p in held]).fetchone()[0]
    assert new == len(held)
    assets = _dbt_assets(second)
    kept = {k for k, m in assets.items() if NOT_REBUILT in str(m.get("dbt", ""))}
    rebuilt = set(assets) - kept
    # Downstream of new deliveries and of linkage: rebuilt; reference data and seeds: kept.
    assert {"intermediate/int_person_events", "marts/fct_indicator_values", "marts/fct_falls_pathway_events",
            "staging/stg_riverside_acute__ae_attendances", "staging/stg_linkage__person_records"} <= rebuilt
    assert {"reference/esp2013", "intermediate/int_calendar_periods", "marts/dim_indicators"} <= kept
    # Every dbt asset is accounted for, so the releases downstream of them ran.
    assert not [s for s in second.all_events if s.is_step_skipped]


def test_the_second_night_equals_a_full_refresh_build_of_the_same_warehouse(two_nights, tmp_path):
    settings, _, _, _ = two_nights
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(settings.warehouse_path, copy)
    env = {**os.environ, "PARTNERSHIP_WAREHOUSE": str(copy), "DBT_TARGET_PATH": str(tmp_path / "target"),
           "DBT_LOG_PATH": str(tmp_path / "logs")}
    project = str(settings.dbt_project_dir)
    with duckdb.connect(str(copy)) as con:  # nothing of night 2's build may survive into the full build
        for s in DBT_SCHEMAS:
            con.execute(f"drop schema if exists {s} cascade")
    proc = subprocess.run([str(Path(os.sys.executable).with_name("dbt")), "build", "--full-refresh", "--quiet",
                           "--project-dir", project, "--profiles-dir", project], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    incremental, full = _tables(settings.warehouse_path), _tables(copy)
    assert sorted(incremental) == sorted(full)
    assert [t for t in full if t.startswith("marts.")]
    # Marts exactly (they are rounded below published precision so that rebuilds are identical).
    assert [t for t in full if t.startswith("marts.") and incremental[t] != full[t]] == []
    # Elsewhere a double may differ in its last bits between any two builds (DuckDB sums in
    # parallel, in no fixed order): equal to 1e-9, everything else exactly.
    assert [t for t in full if not _same_rows(incremental[t], full[t])] == []


def _same_rows(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif x != y:
                return False
    return True


def test_a_night_with_nothing_new_rebuilds_nothing_and_still_publishes(two_nights):
    from orchestration.partnership.cli import run_night

    settings, _, _, _ = two_nights
    before = _tables(settings.warehouse_path)
    third = run_night(settings, quiet=True)
    assert third.success
    assets = _dbt_assets(third)
    assert assets and all(NOT_REBUILT in str(m.get("dbt", "")) for m in assets.values())
    assert not [s for s in third.all_events if s.is_step_skipped]
    assert _tables(settings.warehouse_path) == before
