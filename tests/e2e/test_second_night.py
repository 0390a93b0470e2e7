"""Invariant 2: running the same night again changes nothing."""

from __future__ import annotations

import hashlib

import duckdb

from orchestration.partnership.cli import run_night
from tests.conftest import use_data_dir


def _marts(settings):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("select * from marts.fct_indicator_values order by all").fetchall()


def _deliveries(settings):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("select delivery_id, status, rows_read, rows_valid, rows_quarantined from ops.deliveries order by 1").fetchall()


def _files(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_running_the_same_night_again_changes_no_mart_delivery_or_release(demo_night):
    settings, _ = demo_night
    use_data_dir(settings.data_dir)  # the night's own folder and Dagster instance, whatever ran before
    before = (_marts(settings), _deliveries(settings), _files(settings.releases_dir))
    result = run_night(settings, quiet=True)
    assert result.success
    after = (_marts(settings), _deliveries(settings), _files(settings.releases_dir))
    assert after == before
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        last = con.execute("select status, reason from ops.release_log where protocol_id = 'falls-board' order by seq desc limit 1").fetchall()
    assert last[0][0] == "unchanged"
    assert "not recomputed" in last[0][1], "the same inputs: the release is not computed again"
    packs = {e.event_specific_data.materialization.asset_key.path[-1]: e.event_specific_data.materialization.metadata["status"].value
             for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
             and e.event_specific_data.materialization.asset_key.path[0] == "board_packs"}
    assert packs.get("falls-board") == "current", packs
