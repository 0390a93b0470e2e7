"""The portal's view of `ops`: written by the night's run, owner-only, and the same as the
warehouse it copies, read independently from the warehouse here."""

from __future__ import annotations

import stat

import duckdb
import pytest

pytestmark = pytest.mark.dbt_free


def _read(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_the_night_leaves_an_owner_only_snapshot_in_an_owner_only_folder(portal_data):
    snapshot = portal_data.night.data_dir / "portal" / "ops_snapshot.duckdb"
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    assert stat.S_IMODE(snapshot.parent.stat().st_mode) == 0o700
    assert not list(snapshot.parent.glob("*.tmp.duckdb*"))  # written aside, renamed, nothing left over


def test_the_snapshot_holds_every_delivery_and_release_log_entry_as_the_warehouse_does(portal_data):
    from orchestration.partnership.releases.log import verify_log

    snapshot = portal_data.night.data_dir / "portal" / "ops_snapshot.duckdb"
    warehouse = portal_data.night.warehouse_path
    columns = "delivery_id, agency, file_name, sha256, status, reason, rows_read, rows_quarantined"
    assert _read(snapshot, f"select {columns} from deliveries order by 1") == \
        _read(warehouse, f"select {columns} from ops.deliveries order by 1")
    assert _read(snapshot, "select seq, entry_hash from release_log order by 1") == \
        _read(warehouse, "select seq, entry_hash from ops.release_log order by 1")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        entries, problems = verify_log(con)
    finally:
        con.close()
    assert _read(snapshot, "select entries, problems from log_verification") == [(entries, "[]")] and not problems


def test_opt_out_and_consent_exclusions_are_counted_for_the_person_level_protocol(portal_data):
    snapshot = portal_data.night.data_dir / "portal" / "ops_snapshot.duckdb"
    rows = {(p, rule): (n, people) for p, _, rule, n, people in _read(snapshot, "select * from exclusions")}
    opted_out = _read(portal_data.night.warehouse_path, "select count(*) from linkage.persons where opted_out")[0][0]
    assert opted_out > 0 and rows[("falls-analysts", "opt_out")][0] > 0
    assert 0 < rows[("falls-analysts", "opt_out")][1] <= opted_out  # people kept out are opted-out people
    assert rows[("falls-analysts", "consent")][0] > 0
