"""The release engine on a small real warehouse: disclosure control, independent audit,
fail closed, atomic publication, expiry and the hash-chained release log."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest

from orchestration.partnership import disclosure, release as rel
from orchestration.partnership.protocols import load_protocol
from orchestration.partnership.settings import PROJECT_ROOT

FALLS_BOARD = PROJECT_ROOT / "contracts" / "protocols" / "falls-board.yaml"
DAY = date(2026, 11, 28)


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
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
    assert (district["numerator"], district["numerator_suppressed"], district["value"]) == (15, False, 1500.0)
    assert south["denominator"] == 1040 and north["denominator"] == 810 and district["denominator"] == 1850
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["row_counts"] == {"indicator_values": 3, "indicators": 1}
    assert manifest["lineage"]["deliveries"] == [{"contract": "riverside_acute__emergency_admissions", "file": "a.csv", "sha256": "abc"}]


def test_when_the_builder_fails_to_suppress_the_audit_blocks_and_nothing_is_published(warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(disclosure, "apply", lambda df, *a, **k: df.with_columns(
        [df[c].is_null().alias(f"{c}_suppressed") for c in ("numerator", "denominator")]
        + [df["numerator"].alias("numerator_rounding_base"), df["numerator"].alias("denominator_rounding_base"),
           df["value"].is_null().alias("derived_withheld")]))
    with pytest.raises(rel.ReleaseBlocked, match="between 1 and 7"):
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
    assert chain[0][0] == rel.GENESIS and chain[1][0] == chain[0][1]
