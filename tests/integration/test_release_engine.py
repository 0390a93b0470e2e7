"""The release engine on a small real warehouse: disclosure control, independent audit,
fail closed, atomic publication, expiry and the hash-chained release log."""

from __future__ import annotations

import json
import shutil
from datetime import date

import duckdb
import pytest

import orchestration.partnership.releases.build as build
import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.releases.log as release_log
import orchestration.partnership.releases.publish as rel
from orchestration.partnership.releases.protocols import load_protocol
from orchestration.partnership.settings import PROJECT_ROOT
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.dbt_free

FALLS_BOARD = PROJECT_ROOT / "contracts" / "protocols" / "falls-board.yaml"
DAY = date(2026, 11, 28)


@pytest.fixture
def warehouse(tmp_path, monkeypatch, statistics_functions):
    monkeypatch.setenv("PARTNERSHIP_PSEUDONYM_KEY", TEST_KEY)  # releases are signed with keys derived from it
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        for statement in statistics_functions:  # what dbt creates beside the indicator marts
            con.execute(statement)
        con.execute("create schema marts; create schema ops")
        con.execute("""create table ops.deliveries (contract_id varchar, agency varchar, file_name varchar, sha256 varchar, status varchar)""")
        con.execute("insert into ops.deliveries values ('riverside_acute__emergency_admissions', 'riverside_acute', 'a.csv', 'abc', 'accepted')")
        con.execute("""create table marts.fct_indicator_values as select * from (values
            ('FALLS-01', 'quarter', date '2026-01-01', date '2026-03-31', 'ward', 'E05900001', 'North', 'persons', 3, 812, null::double, null::double, null::double, 'per 100000'),
            ('FALLS-01', 'quarter', date '2026-01-01', date '2026-03-31', 'ward', 'E05900002', 'South', 'persons', 12, 1040, 1900.5, 1000.1, 3100.2, 'per 100000'),
            ('FALLS-01', 'quarter', date '2026-01-01', date '2026-03-31', 'district', 'E07900001', 'Riverside', 'persons', 15, 1852, 1500.0, 800.0, 2400.0, 'per 100000'),
            ('FALLS-01', 'month', date '2026-01-01', date '2026-01-31', 'ward', 'E05900001', 'North', 'persons', 1, 812, null, null, null, 'per 100000'),
            ('MASH-01', 'quarter', date '2026-01-01', date '2026-03-31', 'ward', 'E05900001', 'North', 'persons', 40, 50, 80.0, 70.0, 90.0, 'percent')
            ) as t(indicator_id, period_type, period_start, period_end, geography_type, geography_code, geography_name,
                   breakdown, numerator, denominator, value, lower_ci, upper_ci, unit)""")
        con.execute("""create table marts.dim_indicators as select * from (values
            ('FALLS-01', 'Falls', 'def', 'PHOF', 'num', 'den', 'per 100000', 'month;quarter', 'lower', 2000.0, 'DSR'),
            ('MASH-01', 'Mash', 'def', 'local', 'num', 'den', 'percent', 'month', 'higher', 95.0, 'Wilson')
            ) as t(indicator_id, title, definition, source, numerator_definition, denominator_definition, unit,
                   period_types, direction, target, method)""")
    return path


def test_a_release_holds_only_the_allowed_rows_and_columns_with_counts_controlled(warehouse, tmp_path):
    import polars as pl

    result = rel.release(warehouse, tmp_path / "releases", load_protocol(FALLS_BOARD), DAY)
    assert result.status == "published"
    values = pl.read_parquet(result.path / "parquet" / "indicator_values.parquet")
    assert set(values["indicator_id"]) == {"FALLS-01"}          # MASH-01 is not this protocol's
    assert values.height == 3                                   # ward x month is not allowed
    south = values.filter(pl.col("geography_code") == "E05900002").row(0, named=True)
    north = values.filter(pl.col("geography_code") == "E05900001").row(0, named=True)
    district = values.filter(pl.col("geography_type") == "district").row(0, named=True)
    assert (north["numerator"], north["numerator_suppressed"], north["derived_withheld"]) == (None, True, True)
    # North's 3 would be 15 - 12: South is suppressed too (secondary), the district total stays published
    assert (south["numerator"], south["numerator_suppressed"], south["value"]) == (None, True, None)
    # the warehouse's rate (1500.0, from the exact count) never leaves: without the standardisation bands
    # (marts.fct_indicator_bands) it cannot be computed from protected counts, so it is empty
    assert (district["numerator"], district["numerator_suppressed"], district["value"]) == (15, False, None)
    assert south["denominator"] == 1040 and north["denominator"] == 810 and district["denominator"] == 1850
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["row_counts"] == {"indicator_values": 3, "indicators": 1}
    assert manifest["lineage"]["deliveries"] == [{"contract": "riverside_acute__emergency_admissions", "file": "a.csv", "sha256": "abc"}]


def test_when_the_builder_fails_to_suppress_the_audit_blocks_and_nothing_is_published(warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(disclosure, "apply", lambda df, *a, **k: df.with_columns(
        [df[c].is_null().alias(f"{c}_suppressed") for c in ("numerator", "denominator")]
        + [df["numerator"].alias("numerator_rounding_base"), df["numerator"].alias("denominator_rounding_base"),
           df["value"].is_null().alias("derived_withheld")]))
    # (closing may hide the small cells the broken step left, but not make the rest well formed)
    with pytest.raises(rel.ReleaseBlocked, match=r"between 1 and 7|rounding base differs|not rounded to 5"):
        rel.release(warehouse, tmp_path / "releases", load_protocol(FALLS_BOARD), DAY)
    assert not (tmp_path / "releases" / "falls-board" / DAY.isoformat()).exists()
    assert not list((tmp_path / "releases" / "falls-board").iterdir()), "no half-built folder is left"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select status from ops.release_log").fetchall() == [("blocked",)]


def test_an_expired_protocol_produces_nothing_and_says_why(warehouse, tmp_path):
    protocol = load_protocol(FALLS_BOARD)
    result = rel.release(warehouse, tmp_path / "releases", protocol, date(2030, 1, 1))
    assert result.status == "not_in_force" and "expired" in result.reason
    assert not (tmp_path / "releases").exists()


def test_the_same_content_again_is_logged_unchanged_and_not_rewritten(warehouse, tmp_path):
    protocol = load_protocol(FALLS_BOARD)
    first = rel.release(warehouse, tmp_path / "releases", protocol, DAY)
    mtime = (first.path / "manifest.json").stat().st_mtime_ns
    second = rel.release(warehouse, tmp_path / "releases", protocol, DAY)
    assert second.status == "unchanged"
    assert (first.path / "manifest.json").stat().st_mtime_ns == mtime
    with duckdb.connect(str(warehouse), read_only=True) as con:
        chain = con.execute("select prev_hash, entry_hash from ops.release_log order by seq").fetchall()
    assert chain[0][0] == release_log.GENESIS and chain[1][0] == chain[0][1]


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _log_rows(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select seq, release_date, status, path, reason from ops.release_log order by seq").fetchall()


def _not_computed(monkeypatch):
    """Any computation of the release (its tables, its suppression) now fails the test."""
    def boom(*a, **k):
        raise AssertionError("the release was computed although its inputs are unchanged")
    monkeypatch.setattr(build, "build_tables", boom)
    monkeypatch.setattr(disclosure, "apply", boom)


def test_a_night_with_the_same_inputs_logs_unchanged_without_computing_and_leaves_files_identical(warehouse, tmp_path, monkeypatch):
    from orchestration.partnership.releases.log import verify_log

    protocol = load_protocol(FALLS_BOARD)
    first = rel.release(warehouse, tmp_path / "releases", protocol, DAY)
    assert first.status == "published"
    before = _files(tmp_path / "releases")
    with monkeypatch.context() as m:
        _not_computed(m)
        same_day = rel.release(warehouse, tmp_path / "releases", protocol, DAY)
        next_day = rel.release(warehouse, tmp_path / "releases", protocol, date(2026, 11, 29), reports_dir=tmp_path / "reports")
    for r in (same_day, next_day):
        assert (r.status, r.path) == ("unchanged", first.path) and "not recomputed" in r.reason
        assert r.row_counts == {"indicator_values": 3, "indicators": 1}
    assert _files(tmp_path / "releases") == before, "nothing written, nothing new published"
    log = _log_rows(warehouse)
    assert [(s, str(d)) for _, d, s, _, _ in log] == [("published", "2026-11-28"), ("unchanged", "2026-11-28"),
                                                      ("unchanged", "2026-11-29")]
    assert all(p == f"releases/falls-board/{DAY}" for *_, p, _ in log), "logged relative to the data folder"
    assert "inputs unchanged since the release of 2026-11-28" in log[2][4]
    report = json.loads((tmp_path / "reports" / "releases" / "2026-11-29.json").read_text())
    assert report["protocols"]["falls-board"]["status"] == "unchanged"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert verify_log(con) == (3, [])


def _late_record_for_south(warehouse):
    """South's count grows by one (a late record for a quarter already sent), and the district's with it."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_indicator_values set numerator = 13 where geography_code = 'E05900002' and period_type = 'quarter'")
        con.execute("update marts.fct_indicator_values set numerator = 16 where geography_type = 'district' and period_type = 'quarter'")
        con.execute("update marts.fct_indicator_values set value = 1700.0 where geography_type = 'district' and period_type = 'quarter'")


def test_a_changed_mart_row_recomputes_and_publishes_the_cells_already_sent_as_first_sent(warehouse, tmp_path):
    import polars as pl

    protocol = load_protocol(FALLS_BOARD)
    first = rel.release(warehouse, tmp_path / "releases", protocol, DAY)
    _late_record_for_south(warehouse)
    with duckdb.connect(str(warehouse)) as con:  # and a new quarter, so that there is something new to publish
        con.execute("""insert into marts.fct_indicator_values values ('FALLS-01', 'quarter', date '2026-04-01',
                       date '2026-06-30', 'district', 'E07900001', 'Riverside', 'persons', 40, 1852, 2100.0, 1500.0, 2800.0,
                       'per 100000')""")
    nxt = rel.release(warehouse, tmp_path / "releases", protocol, date(2026, 11, 29))
    assert nxt.status == "published" and nxt.path.name == "2026-11-29"
    new, old = (pl.read_parquet(r.path / "parquet" / "indicator_values.parquet") for r in (nxt, first))
    assert new.filter(pl.col("period_start") == date(2026, 1, 1)).equals(old), \
        "every cell the board holds is sent again exactly: the change would be a count of new events"
    assert new.height == old.height + 1
    with duckdb.connect(str(warehouse), read_only=True) as con:
        states = con.execute("select seq, true_value, figure_true_value from ops.disclosure_ledger where figure = 'numerator' "
                             "and cell like '%E07900001%2026-01-01%' order by seq").fetchall()
    assert [s[1:] for s in states] == [(15.0, 15.0), (16.0, 15.0)], "the ledger knows the count moved behind the held figure"


def test_counts_moved_behind_figures_the_board_holds_keep_its_release_current_without_computing(warehouse, tmp_path, monkeypatch):
    import polars as pl

    protocol = load_protocol(FALLS_BOARD)
    first = rel.release(warehouse, tmp_path / "releases", protocol, DAY)
    (first.path / "board_pack.html").write_text("the pack of the first release")  # a pack beside it is no change
    before = _files(tmp_path / "releases")
    _late_record_for_south(warehouse)  # the counts behind held figures move; every cell stays the same
    with monkeypatch.context() as m:
        _not_computed(m)
        nxt = rel.release(warehouse, tmp_path / "releases", protocol, date(2026, 11, 29), reports_dir=tmp_path / "reports")
    assert (nxt.status, nxt.path) == ("unchanged", first.path)
    assert "only counts behind figures falls-prevention-board already holds changed (rows:indicator_values)" in nxt.reason
    assert _files(tmp_path / "releases") == before, "no new dated copy, nothing rewritten"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(distinct seq) from ops.disclosure_ledger").fetchall() == [(1,)], \
            "the recipient was sent nothing new"
    # independent of that rule: with the current folder gone, the same night computes and publishes these figures
    scratch = tmp_path / "scratch"
    shutil.copytree(tmp_path / "releases", scratch / "releases")
    shutil.copy(warehouse, scratch / "warehouse.duckdb")
    shutil.rmtree(scratch / "releases" / protocol.id / DAY.isoformat())
    fresh = rel.release(scratch / "warehouse.duckdb", scratch / "releases", protocol, date(2026, 11, 29))
    assert fresh.status == "published"
    for name in ("indicator_values", "indicators"):
        assert pl.read_parquet(fresh.path / "parquet" / f"{name}.parquet").equals(
            pl.read_parquet(first.path / "parquet" / f"{name}.parquet"))
    with monkeypatch.context() as m:  # the next night with the same inputs: its fingerprint alone says so
        _not_computed(m)
        again = rel.release(warehouse, tmp_path / "releases", protocol, date(2026, 11, 30))
    assert (again.status, again.path) == ("unchanged", first.path) and "inputs unchanged" in again.reason


def test_a_held_cell_described_otherwise_or_a_ledger_that_lacks_a_figure_makes_the_release_computed(warehouse, tmp_path, monkeypatch):
    protocol = load_protocol(FALLS_BOARD)
    first = rel.release(warehouse, tmp_path / "releases", protocol, DAY)
    _late_record_for_south(warehouse)
    with duckdb.connect(str(warehouse)) as con:  # the recipient's ledger lost the district's figures
        con.execute("delete from ops.disclosure_ledger where cell like '%E07900001%'")
    calls = []
    real = build.build_tables
    monkeypatch.setattr(build, "build_tables", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert rel.release(warehouse, tmp_path / "releases", protocol, date(2026, 11, 29)).status in ("published", "unchanged")
    assert calls == [1], "a figure of the current release the ledger does not hold: computed"
    with duckdb.connect(str(warehouse)) as con:  # a ward renamed: a cell the board has never been sent
        con.execute("update marts.fct_indicator_values set geography_name = 'South Shore' where geography_code = 'E05900002'")
    nxt = rel.release(warehouse, tmp_path / "releases", protocol, date(2026, 11, 30))
    assert calls == [1, 1] and nxt.status == "published" and nxt.path != first.path


def test_a_changed_protocol_file_recomputes(warehouse, tmp_path, monkeypatch):
    copy = tmp_path / "protocols" / "falls-board.yaml"
    copy.parent.mkdir()
    copy.write_bytes(FALLS_BOARD.read_bytes())
    first = rel.release(warehouse, tmp_path / "releases", load_protocol(copy), DAY)
    copy.write_bytes(FALLS_BOARD.read_bytes() + b"\n# reviewed by the board, no change to the terms\n")
    calls = []
    real = build.build_tables
    monkeypatch.setattr(build, "build_tables", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = rel.release(warehouse, tmp_path / "releases", load_protocol(copy), DAY)
    assert calls == [1], "the protocol's bytes changed: the release is computed"
    assert (again.status, again.path) == ("unchanged", first.path)  # the same content as before, so not rewritten
    assert "computed and audited again (protocol_file changed)" in again.reason


def test_a_published_folder_changed_since_is_never_published_over_and_the_night_names_the_change(warehouse, tmp_path):
    protocol = load_protocol(FALLS_BOARD)
    releases = tmp_path / "releases"
    first = rel.release(warehouse, releases, protocol, DAY)
    good = _files(first.path)
    changes = {"data_dictionary.md in 2026-11-28 differs": lambda p: (p / "data_dictionary.md").write_text("edited"),
               "missing from 2026-11-28: parquet/indicators.parquet": lambda p: (p / "parquet" / "indicators.parquet").unlink(),
               "not in the release in 2026-11-28: extra.csv": lambda p: (p / "extra.csv").write_text("a,b\n")}
    for i, (named, change) in enumerate(changes.items()):
        change(first.path)
        edited = _files(first.path)
        for day in (DAY, date(2026, 11, 29)):  # neither over it nor beside it
            with pytest.raises(rel.ReleaseBlocked, match="changed after publication"):
                rel.release(warehouse, releases, protocol, day)
        assert _log_rows(warehouse)[-1][2] == "blocked" and named in _log_rows(warehouse)[-1][4]
        assert _files(first.path) == edited, "the changed folder is left as it is: evidence"
        assert not (releases / protocol.id / "2026-11-29").exists()
        shutil.move(first.path, tmp_path / f"evidence-{i}")  # what the operator does
        again = rel.release(warehouse, releases, protocol, DAY)
        assert again.status == "published" and again.path == first.path
        same = ("data_dictionary.md", "parquet/indicators.parquet", "parquet/indicator_values.parquet")
        assert [_files(again.path)[f] for f in same] == [good[f] for f in same]


def test_after_an_expired_or_blocked_night_the_release_is_computed_again(warehouse, tmp_path, monkeypatch):
    protocol = load_protocol(FALLS_BOARD)
    rel.release(warehouse, tmp_path / "releases", protocol, DAY)
    assert rel.release(warehouse, tmp_path / "releases", protocol, date(2030, 1, 1)).status == "not_in_force"
    calls = []
    real = build.build_tables
    monkeypatch.setattr(build, "build_tables", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert rel.release(warehouse, tmp_path / "releases", protocol, DAY).status == "unchanged"
    assert calls == [1], "the latest log entry is not a publication: computed"


SAFEGUARDING_BOARD = PROJECT_ROOT / "contracts" / "protocols" / "safeguarding-board.yaml"


def _bands(con, indicator, events):
    con.execute("""insert into marts.fct_indicator_bands values (?, 'quarter', date '2026-01-01', date '2026-03-31',
                   'ward', 'E05900001', 'persons', '65-69', 0.5, 400, 100.0, ?)""", [indicator, events])


def test_another_boards_standardisation_bands_do_not_make_a_release_recomputed_its_own_do(warehouse, tmp_path, monkeypatch):
    import polars as pl

    with duckdb.connect(str(warehouse)) as con:
        con.execute("""create table marts.fct_indicator_bands (indicator_id varchar, period_type varchar, period_start date,
                       period_end date, geography_type varchar, geography_code varchar, breakdown varchar, band varchar,
                       standard_weight double, residents bigint, person_years double, events bigint)""")
        _bands(con, "FALLS-01", 3)
        _bands(con, "MASH-01", 40)
    protocol = load_protocol(SAFEGUARDING_BOARD)
    first = rel.release(warehouse, tmp_path / "releases", protocol, DAY)
    assert first.status == "published"
    with duckdb.connect(str(warehouse)) as con:  # the falls board's bands move: nothing the safeguarding board reads
        con.execute("update marts.fct_indicator_bands set events = 4 where indicator_id = 'FALLS-01'")
    with monkeypatch.context() as m:
        _not_computed(m)
        kept = rel.release(warehouse, tmp_path / "releases", protocol, date(2026, 11, 29))
    assert (kept.status, kept.path) == ("unchanged", first.path) and "inputs unchanged since" in kept.reason
    # from scratch (a copy of the warehouse without the log, ledger or fingerprints): the same figures
    scratch = tmp_path / "scratch.duckdb"
    shutil.copy(warehouse, scratch)
    with duckdb.connect(str(scratch)) as con:
        con.execute("drop table ops.release_log; drop table ops.release_inputs; drop table ops.disclosure_ledger")
    fresh = rel.release(scratch, tmp_path / "scratch-releases", protocol, date(2026, 11, 29))
    for name in ("indicator_values", "indicators"):
        assert pl.read_parquet(fresh.path / "parquet" / f"{name}.parquet").equals(
            pl.read_parquet(first.path / "parquet" / f"{name}.parquet"))
    with duckdb.connect(str(warehouse)) as con:  # its own indicator's bands move: computed again
        con.execute("update marts.fct_indicator_bands set events = 41 where indicator_id = 'MASH-01'")
    again = rel.release(warehouse, tmp_path / "releases", protocol, date(2026, 11, 30))
    # seen as a change of its inputs; every cell is one the board holds, so its figures are sent as first sent
    assert (again.status, again.path) == ("unchanged", first.path) and "already holds changed (bands)" in again.reason
