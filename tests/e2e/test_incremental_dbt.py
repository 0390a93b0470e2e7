"""An incremental night builds only what changed, and ends exactly where a full build ends,
also when the night before failed in its dbt step.

Starts from a copy of the session's demo night (its warehouse built by a full night). Night 2
lands one more day of the nightly extracts: each re-sends the first rows of the day before
(the same records again, so the earlier rows are superseded: they leave staging, and
int_person_events must remove them and store the new ones). Before night 2 a few stored fall
records of int_person_events are given another person and that person is logged in
linkage.person_changes, as a merge or split of the person index leaves them (the incremental
build must relink them, and rebuild both people's falls and pathway), and retention purges one
earlier nightly delivery (its records leave valid and linkage, so the incremental staging tables
and int_person_events must remove them). Another person's fall records are removed from
int_person_events and their falls left stale, so that only dbt's own log of the people it
rewrote tells the falls models to rebuild them; a school attendance record is removed from it too
and its extract logged whole, as its staging table logs itself when built whole (only that entry
tells night 2 to store the record again). Night 2's dbt step fails (int_falls_episodes
cannot be written): what it wrote stands, and what it was to rebuild from stays logged. Night 3,
with nothing new, rebuilds only the models downstream of sources whose data changed since the
last build that succeeded, the staging tables of the nightly extracts, int_person_events, the
falls models and the family quarters incrementally (a household's quarters, stored stale
beforehand, are named only by linkage's household log). Then the whole project is built again with `dbt build
--full-refresh` on a copy of night 3's warehouse: every table dbt built must be the same, row
for row. A fourth night with nothing new rebuilds nothing and still publishes. A fifth, after a
link run that moved one person's fall records to another and logged both, rebuilds those
people's records from the log and again equals a full build."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.dbt.runner import CHANGE_LOGS, BuildPlan
from orchestration.partnership.settings import PROJECT_ROOT
from tests.conftest import DEMO_AS_OF, DEMO_RUN_DATE, use_data_dir

DBT_SCHEMAS = ("staging", "intermediate", "marts", "reference")
NOT_REBUILT = "not rebuilt"
RESENT_ROWS = 25
RELINKED = 12
PURGED = ("county_ambulance__incidents", "stg_county_ambulance__incidents")
SABOTAGED = "intermediate.int_falls_episodes"
FAMILIES = "intermediate.int_family_quarters"
WHOLE = "county_council__school_attendance"


def _resend(landing: Path, day) -> dict[Path, set[str]]:
    """One more nightly file per nightly extract, dated `day` and arriving a day after the file of
    the day before: that file's records and the first records of the extract's history, sent
    again. Returns each new file with the names of the files whose records it re-sends."""
    before = (day - timedelta(days=1)).strftime("%Y%m%d")
    out = {}
    for c in load_contracts(PROJECT_ROOT / "contracts" / "agencies").values():
        if c.delivery.cadence != "nightly":
            continue
        folder = landing / c.agency / c.extract
        for p in sorted(folder.glob(f"*_{before}.csv")):
            history = sorted(folder.glob("*_history_*.csv"))[0]
            lines = p.read_bytes().splitlines(keepends=True)  # bytes: extracts are not all UTF-8
            older = history.read_bytes().splitlines(keepends=True)[1:1 + RESENT_ROWS]
            new = p.with_name(p.name.replace(before, day.strftime("%Y%m%d")))
            new.write_bytes(b"".join(lines + older))
            st = p.stat()
            os.utime(new, (st.st_atime, st.st_mtime + 86400))  # on time, as the day before's was
            out[new] = {p.name, history.name}
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


def _run_results(settings, result) -> list[tuple[str, str]]:
    """(unique_id, status) of every node the run's `dbt build` ran (dagster-dbt names each
    invocation's folder after the step and the run)."""
    found = list((settings.dbt_project_dir / "target").glob(f"partnership_dbt_models-{result.run_id[:7]}-*/run_results.json"))
    assert len(found) == 1, found
    return [(r["unique_id"], r["status"]) for r in json.loads(found[0].read_text())["results"]]


def _keys(warehouse: Path) -> set[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return set(con.execute("select contract_id, delivery_id, row_number from intermediate.int_person_events").fetchall())


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory, demo_night):
    from orchestration.partnership.cli import run_night

    demo, first = demo_night
    data_dir = tmp_path_factory.mktemp("incremental") / "data"
    shutil.copytree(demo.data_dir, data_dir)
    day = DEMO_AS_OF
    settings = use_data_dir(data_dir, run_date=DEMO_RUN_DATE + timedelta(days=1))
    resent = _resend(settings.landing_dir, day)
    held = sorted(resent)
    assert len(held) >= 6
    before = _keys(settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        # As a merge or split of the person index leaves them: fall records stored with a person
        # (and household) the index no longer gives them, that person logged by the link run.
        other = con.execute("""select person_id from intermediate.int_person_events where is_fall and age_at_event >= 65
                               order by person_id limit 1""").fetchone()[0]
        relinked = con.execute(
            f"""update intermediate.int_person_events as e set person_id = ?, person_key = hash(?), household_id = null
                where e.person_id is not null and e.person_id <> ?
                  and (e.contract_id, e.delivery_id, e.row_number) in (
                      select (contract_id, delivery_id, row_number) from intermediate.int_person_events
                      where person_id is not null and is_fall order by all limit {RELINKED})""", [other, other, other]).fetchone()[0]
        con.execute("""insert into linkage.person_changes
                       select coalesce(max(link_run), 0) + 1, ? from linkage.person_changes""", [other])
        # Another person's fall records staged but not stored, logged as a staging model logs
        # the older row a purged correction gives back, and their falls as stored before: night 2
        # stores the records and logs the person, and only that log tells night 3 to rebuild
        # their falls.
        stale = con.execute("""select person_id from intermediate.int_person_events where is_fall
                               order by person_id desc limit 1""").fetchone()[0]
        con.execute("""insert into ops.dbt_changed_staged_rows select contract_id, delivery_id, row_number
                       from intermediate.int_person_events where person_id = ? and is_fall""", [stale])
        con.execute("delete from intermediate.int_person_events where person_id = ? and is_fall", [stale])
        # A school attendance record not stored, its extract logged whole as its staging table
        # logs itself when built whole: night 2 compares every record of that extract.
        con.execute("""delete from intermediate.int_person_events where (contract_id, delivery_id, row_number) in (
                           select (contract_id, delivery_id, row_number) from intermediate.int_person_events
                           where contract_id = ? order by all limit 1)""", [WHOLE])
        con.execute("insert into ops.dbt_changed_staged_rows values (?, null, null)", [WHOLE])
        con.execute(f"update {SABOTAGED} set records = records + 100 where person_id = ?", [stale])
        # A household's quarters as stored before a link run changed its members, the household
        # logged by that run: only linkage's household log tells dbt to build them again.
        household = con.execute(f"select min(household_id) from {FAMILIES}").fetchone()[0]
        con.execute(f"update {FAMILIES} set homelessness = not homelessness where household_id = ?", [household])
        con.execute("""insert into linkage.household_changes
                       select coalesce(max(link_run), 0) + 1, ? from linkage.person_changes""", [household])
    assert relinked > 0
    purged = _purge_a_nightly_delivery(settings, day - timedelta(days=2))
    with duckdb.connect(str(settings.warehouse_path)) as con:  # the falls model's insert now fails
        con.execute(f"alter table {SABOTAGED} add column sabotage integer")
    failed = run_night(settings, quiet=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        pending = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in CHANGE_LOGS}
        con.execute(f"alter table {SABOTAGED} drop column sabotage")
    second = run_night(settings, quiet=True)
    return settings, first, second, resent, before, purged, (failed, pending)


def _purge_a_nightly_delivery(settings, day) -> tuple[int, str]:
    """As retention purges an expired delivery (its rows, whole, from every row schema and from
    linkage): the ambulance delivery of `day`, which night 2 does not send again."""
    from orchestration.partnership.ops.retention import _purge_rows

    with duckdb.connect(str(settings.warehouse_path)) as con:
        found = con.execute("""select delivery_id, file_name from ops.deliveries
                               where contract_id = ? and status = 'accepted' and file_name like ?""",
                            [PURGED[0], f"%_{day:%Y%m%d}.csv"]).fetchall()
        assert len(found) == 1, found
        did, name = found[0]
        rows = _purge_rows(con, {"contract_id": PURGED[0], "delivery_id": did})
        assert rows[f"valid.{PURGED[0]}"] > 0 and rows["linkage.person_records"] > 0
        if "purged_at" in {r[0] for r in con.execute("describe ops.deliveries").fetchall()}:
            con.execute("update ops.deliveries set purged_at = current_timestamp where delivery_id = ?", [did])
    return did, name


def test_the_first_night_builds_everything(two_nights):
    _, first, _, _, _, _, _ = two_nights
    built = _dbt_assets(first)
    assert built and not [k for k, m in built.items() if NOT_REBUILT in str(m.get("dbt", ""))]


def test_a_night_whose_dbt_step_failed_leaves_what_it_was_to_rebuild_from_logged(two_nights):
    _, _, _, _, _, _, (failed, pending) = two_nights
    assert not failed.success
    assert all(pending[log] > 0 for log in CHANGE_LOGS), pending


def test_the_night_after_rebuilds_only_what_the_new_deliveries_and_the_person_index_reach_since_the_last_good_build(two_nights):
    settings, _, second, held, before, (purged_id, purged_name), _ = two_nights
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
    # int_person_events was built incrementally: written only where records changed.
    runs = sorted((settings.dbt_project_dir / "target").glob("*/run/**/people/int_person_events.sql"),
                  key=lambda p: p.stat().st_mtime)
    assert runs and "_deleted" in runs[-1].read_text(), "int_person_events was not built incrementally"
    # So were the models that group a person's records, from the people it logged.
    for model in ("int_falls_episodes", "fct_falls_pathway_events"):
        built = sorted((settings.dbt_project_dir / "target").glob(f"*/run/**/{model}.sql"), key=lambda p: p.stat().st_mtime)
        assert built and "_deleted" in built[-1].read_text(), f"{model} was not built incrementally"
    # Family quarters: only the households the logs name, and quarters not stored yet.
    built = sorted((settings.dbt_project_dir / "target").glob("*/compiled/**/int_family_quarters.sql"),
                   key=lambda p: p.stat().st_mtime)
    assert built and "households as materialized" in built[-1].read_text(), "family quarters were built whole"
    # So were the staging tables of the nightly extracts.
    staged = sorted((settings.dbt_project_dir / "target").glob(f"*/run/**/{PURGED[1]}.sql"), key=lambda p: p.stat().st_mtime)
    assert staged and "_deleted" in staged[-1].read_text(), f"{PURGED[1]} was not built incrementally"
    # The re-sent records' earlier rows and the purged delivery's rows left it, the new
    # deliveries' rows came in.
    after = _keys(settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        delivery = dict(con.execute("select delivery_id, file_name from ops.deliveries").fetchall())
        staged_purged = con.execute(f"select count(*) from staging.{PURGED[1]} where delivery_id = ?", [purged_id]).fetchone()[0]
    resent_from = set().union(*held.values())
    removed, added = before - after, after - before
    assert removed and {delivery[d] for _, d, _ in removed} <= resent_from | {purged_name}
    assert {k for k in before if k[1] == purged_id} and {k for k in before if k[1] == purged_id} <= removed
    assert staged_purged == 0
    assert added and {delivery[d] for _, d, _ in added} == {p.name for p in held}
    # A partial build does not run the unit tests (the project is the one whose full build
    # passed them), though models they test were rebuilt; their data tests ran.
    results = _run_results(settings, second)
    manifest = json.loads((settings.dbt_project_dir / "target" / "manifest.json").read_text())
    unit_tested = {u["depends_on"]["nodes"][0] for u in manifest["unit_tests"].values()}
    assert unit_tested & {u for u, _ in results if u.startswith("model.")}
    assert [u for u, _ in results if u.startswith("test.")]
    assert not [u for u, _ in results if u.startswith("unit_test.")]
    # dbt started from the parse state the failed night's build kept, made in this data folder
    # (a state made elsewhere is parsed again whole: "profile has changed").
    log = next((settings.dbt_project_dir / "target").glob(f"partnership_dbt_models-{second.run_id[:7]}-*/dbt.log"))
    assert "Unable to do partial parsing" not in log.read_text()


def _full_refresh_differences(settings, tmp_path) -> list[str]:
    """Build the whole project with --full-refresh on a copy of the warehouse (every dbt schema
    dropped first); the dbt tables that differ from the warehouse's, row for row."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(settings.warehouse_path, copy)
    env = {**os.environ, "PARTNERSHIP_WAREHOUSE": str(copy), "DBT_TARGET_PATH": str(tmp_path / "target"),
           "DBT_LOG_PATH": str(tmp_path / "logs")}
    project = str(settings.dbt_project_dir)
    with duckdb.connect(str(copy)) as con:  # nothing of the incremental builds may survive into the full build
        for s in DBT_SCHEMAS:
            con.execute(f"drop schema if exists {s} cascade")
    full_build = BuildPlan(project="", sources={}, full=True, reason="").build_args({})  # what the night runs
    proc = subprocess.run([str(Path(os.sys.executable).with_name("dbt")), "build", *full_build, "--quiet",
                           "--project-dir", project, "--profiles-dir", project], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    # A full build runs every unit test, and they pass.
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    unit = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    manifest = json.loads((settings.dbt_project_dir / "target" / "manifest.json").read_text())
    assert set(unit) == set(manifest["unit_tests"]) and set(unit.values()) == {"pass"}
    incremental, full = _tables(settings.warehouse_path), _tables(copy)
    assert sorted(incremental) == sorted(full)
    assert [t for t in full if t.startswith("marts.")]
    # Every table exactly, doubles to the last bit: sums of fractions are exact (exact_sum).
    return [t for t in full if incremental[t] != full[t]]


def test_the_night_after_a_failed_one_equals_a_full_refresh_build_of_the_same_warehouse(two_nights, tmp_path):
    settings, _, _, _, _, _, _ = two_nights
    assert _full_refresh_differences(settings, tmp_path) == []


def test_a_night_with_nothing_new_rebuilds_nothing_and_still_publishes(two_nights):
    from orchestration.partnership.cli import run_night

    settings, _, _, _, _, _, _ = two_nights
    before = _tables(settings.warehouse_path)
    third = run_night(settings, quiet=True)
    assert third.success
    assets = _dbt_assets(third)
    assert assets and all(NOT_REBUILT in str(m.get("dbt", "")) for m in assets.values())
    assert not [s for s in third.all_events if s.is_step_skipped]
    assert _tables(settings.warehouse_path) == before


def test_a_relink_on_a_quiet_night_rebuilds_the_people_linkage_logged_and_equals_a_full_refresh(two_nights, tmp_path):
    """Night 2 purged linkage rows, so its link run linked everyone and the night after compared
    every stored record with the person index. Here a link run changes two people and logs them,
    as a merge does: int_person_events rebuilds their records from the log alone."""
    from orchestration.partnership.cli import run_night

    settings, _, _, _, _, _, _ = two_nights
    with duckdb.connect(str(settings.warehouse_path)) as con:
        giver, taker = (p for (p,) in con.execute(
            """select person_id from intermediate.int_person_events where is_fall and age_at_event >= 65
               group by person_id order by person_id limit 2""").fetchall())
        moved = set(con.execute("""select contract_id, delivery_id, row_number from intermediate.int_person_events
                                   where person_id = ? and is_fall""", [giver]).fetchall())
        con.execute("""update linkage.person_records set person_id = ?
                       where person_id = ? and (contract_id, delivery_id, row_number) in (
                           select (contract_id, delivery_id, row_number) from intermediate.int_person_events
                           where person_id = ? and is_fall)""", [taker, giver, giver])
        con.execute("""insert into linkage.person_changes select coalesce(max(link_run), 0) + 1, unnest([?, ?])
                       from linkage.person_changes""", [giver, taker])
    night = run_night(settings, quiet=True)
    assert night.success and moved
    built = sorted((settings.dbt_project_dir / "target").glob("*/compiled/**/people/int_person_events.sql"),
                   key=lambda p: p.stat().st_mtime)
    assert built and "The records of the people linkage changed" in built[-1].read_text()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        now = dict(((c, d, r), p) for c, d, r, p in con.execute(
            "select contract_id, delivery_id, row_number, person_id from intermediate.int_person_events").fetchall())
        left = con.execute("select count(*) from linkage.person_changes").fetchone()[0]
    assert {now[k] for k in moved} == {taker} and left == 0
    assert _full_refresh_differences(settings, tmp_path) == []
