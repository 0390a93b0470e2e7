"""Faults around the deliveries: the warehouse held by another process, a full disk while a
release is written, the pseudonymisation key missing or changed between nights."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership.ingest.night import check_key
from orchestration.partnership.warehouse.connection import WarehouseLocked, connect

pytestmark = pytest.mark.dbt_free

HOLD = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(float(sys.argv[2]))"


def _holder(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _snapshot(path: Path) -> list:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select delivery_id, status, rows_read from ops.deliveries order by delivery_id").fetchall()


@pytest.fixture()
def warehouse_copy(hostile, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(hostile.settings.warehouse_path, path)
    return path


def test_a_warehouse_held_by_another_process_is_a_clear_error_after_retrying_and_nothing_is_corrupted(warehouse_copy):
    before = _snapshot(warehouse_copy)
    proc = _holder(warehouse_copy, 60)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseLocked) as exc:
            with connect(warehouse_copy, retries=4, wait_s=0.25):
                pass
        assert time.monotonic() - started >= 0.75, "it retried before giving up"
        assert str(warehouse_copy) in str(exc.value) and "in use by another process" in str(exc.value)
    finally:
        proc.kill()
        proc.wait()
    assert _snapshot(warehouse_copy) == before


def test_a_warehouse_released_while_waiting_is_used_once_free(warehouse_copy):
    before = _snapshot(warehouse_copy)
    proc = _holder(warehouse_copy, 1.5)
    try:
        with connect(warehouse_copy, retries=40, wait_s=0.25) as con:
            con.execute("create table ops.fault_probe as select 1 as x")
    finally:
        proc.wait()
    assert _snapshot(warehouse_copy) == before
    with duckdb.connect(str(warehouse_copy), read_only=True) as con:
        assert con.execute("select x from ops.fault_probe").fetchall() == [(1,)]


def test_a_missing_key_is_a_clear_error_before_anything_is_read(hostile, monkeypatch):
    before = _snapshot(hostile.settings.warehouse_path)
    monkeypatch.delenv(ps.KEY_ENV, raising=False)
    monkeypatch.delenv(ps.KEY_FILE_ENV, raising=False)
    with pytest.raises(ps.PseudonymKeyError, match="no pseudonymisation key: set PARTNERSHIP_PSEUDONYM_KEY"):
        check_key(hostile.settings)
    monkeypatch.setenv(ps.KEY_FILE_ENV, str(hostile.settings.secrets_dir / "gone.key"))
    with pytest.raises(ps.PseudonymKeyError, match="does not exist"):
        check_key(hostile.settings)
    assert _snapshot(hostile.settings.warehouse_path) == before


def test_a_changed_key_loads_nothing_and_keeps_the_fingerprint(hostile, monkeypatch, warehouse_copy):
    from dataclasses import replace

    settings = replace(hostile.settings)  # same folders
    monkeypatch.setenv(ps.KEY_ENV, "a-different-key-" + "y" * 40)
    with pytest.raises(ps.PseudonymKeyError, match="differs from the one this warehouse was built with"):
        check_key(settings)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        fp = con.execute("select value from ops.settings where name = 'key_fingerprint'").fetchall()[0][0]
    from tests.conftest import TEST_KEY

    assert fp == ps.fingerprint(TEST_KEY.encode()), "no silent re-keying"


def test_a_changed_key_builds_no_person_level_release(hostile, monkeypatch, tmp_path):
    from orchestration.partnership.releases.publish import release
    from orchestration.partnership.releases.protocols import load_protocols

    protocols = load_protocols(hostile.settings.protocols_dir)
    person_level = next(p for p in protocols.values() if any(o.get("pseudonyms") for o in p.outputs))
    monkeypatch.setenv(ps.KEY_ENV, "a-different-key-" + "z" * 40)
    with pytest.raises(ps.PseudonymKeyError, match="no release was built"):
        release(hostile.settings.warehouse_path, tmp_path / "releases", person_level, date(2026, 11, 28))
    assert not (tmp_path / "releases").exists()


@pytest.fixture()
def small_disk(tmp_path):
    """A 6 MiB tmpfs for the releases folder (the sandbox runs as root; see docs/contracts.md)."""
    mnt = tmp_path / "releases"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path, leave: int) -> None:
    st = shutil.disk_usage(folder)
    with open(folder / "filler.bin", "wb") as fh:
        fh.write(b"\0" * max(0, st.free - leave))


def test_a_full_disk_while_writing_a_release_publishes_nothing_and_keeps_the_previous_one(demo_night, tmp_path, small_disk):
    from orchestration.partnership.releases.publish import ReleaseBlocked, release
    from orchestration.partnership.releases.protocols import load_protocols
    from orchestration.partnership.warehouse.files import sha256_file

    settings, _ = demo_night
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(settings.warehouse_path, warehouse)  # the session's night stays untouched
    protocol = load_protocols(settings.protocols_dir)["falls-board"]
    first = release(warehouse, small_disk, protocol, date(2026, 11, 28))
    assert first.status == "published"
    kept = {p: sha256_file(p) for p in first.path.rglob("*") if p.is_file()}
    _fill(small_disk, leave=64 * 1024)
    same = release(warehouse, small_disk, protocol, date(2026, 11, 29))
    assert (same.status, same.path) == ("unchanged", first.path), "unchanged inputs: nothing to write, a full disk is no matter"
    with duckdb.connect(str(warehouse)) as con:  # the district renamed: cells the board was never sent, to be written
        con.execute("update marts.fct_indicator_values set geography_name = geography_name || ' District' "
                    "where geography_type = 'district'")
    with pytest.raises(ReleaseBlocked, match="no space left on the device") as exc:
        release(warehouse, small_disk, protocol, date(2026, 11, 29))
    assert "nothing was published" in str(exc.value) and "Traceback" not in str(exc.value)
    folder = small_disk / protocol.id
    assert sorted(p.name for p in folder.iterdir()) == ["2026-11-28"], "no partial release, no building folder left"
    assert {p: sha256_file(p) for p in first.path.rglob("*") if p.is_file()} == kept
    with duckdb.connect(str(warehouse), read_only=True) as con:
        status, reason = con.execute("select status, reason from ops.release_log order by seq desc limit 1").fetchall()[0]
    assert status == "blocked" and "no space left" in reason


def test_formula_values_are_neutralised_in_csv_output_and_kept_as_data(tmp_path, monkeypatch, capsys):
    from orchestration.partnership.cli import main
    from tests.hostile.corpus import FORMULAS

    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(tmp_path))
    folder = tmp_path / "releases" / "supporting-families" / "2026-11-28"
    folder.mkdir(parents=True)
    with duckdb.connect(str(folder / "supporting-families.duckdb")) as con:
        con.execute("create table cohort (forename varchar, surname varchar, n integer)")
        con.executemany("insert into cohort values (?, ?, ?)", [[f, "Plain", -3] for f in FORMULAS])
    assert main(["query", "--protocol", "supporting-families", "select * from cohort order by forename", "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["forename", "surname", "n"]
    assert sorted(r[0] for r in rows[1:]) == sorted("'" + f for f in FORMULAS)
    assert {r[1] for r in rows[1:]} == {"Plain"} and {r[2] for r in rows[1:]} == {"-3"}, "numbers stay numbers"
    with duckdb.connect(str(folder / "supporting-families.duckdb"), read_only=True) as con:
        assert sorted(r[0] for r in con.execute("select forename from cohort").fetchall()) == sorted(FORMULAS)
