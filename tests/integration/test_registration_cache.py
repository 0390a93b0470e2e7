"""Registration reads a landed file once: its hash is kept with its size, times and inode, and a
file whose size or times changed is read again, so re-sent and changed files are still seen."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime

import duckdb
import pytest

import orchestration.partnership.ingest.deliveries as ingest
from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.settings import PROJECT_ROOT
from orchestration.partnership.warehouse.connection import ensure_schemas

pytestmark = pytest.mark.dbt_free

CONTRACTS = load_contracts(PROJECT_ROOT / "contracts" / "agencies")
NOW = datetime(2026, 11, 28, 2, 0)


@pytest.fixture
def env(tmp_path, monkeypatch):
    landing = tmp_path / "landing" / "riverside_fire" / "safe_and_well_visits"
    landing.mkdir(parents=True)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schemas(con)
    reads = []
    real = ingest.sha256_file
    monkeypatch.setattr(ingest, "sha256_file", lambda p: reads.append(p.name) or real(p))
    yield tmp_path / "landing", landing, con, reads
    con.close()


def _register(con, root):
    return ingest.register(con, root, CONTRACTS, NOW)


def _deliveries(con):
    return con.execute("select file_name, sha256 from ops.deliveries order by delivery_id").fetchall()


def test_a_registered_file_is_not_read_again_and_a_changed_one_is(env):
    root, folder, con, reads = env
    a, b = folder / "safe_and_well_visits_20261126.csv", folder / "safe_and_well_visits_20261127.csv"
    a.write_bytes(b"visit_id,visit_date\n1,2026-11-26\n")
    b.write_bytes(b"visit_id,visit_date\n2,2026-11-27\n")
    assert len(_register(con, root)) == 2 and sorted(reads) == [a.name, b.name]
    reads.clear()
    assert _register(con, root) == [] and reads == [], "nothing changed: nothing read, nothing registered"

    # the same size and modification time, other bytes (a tool that keeps times): its change time moved
    st = a.stat()
    a.write_bytes(b"visit_id,visit_date\n9,2026-11-26\n")
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert a.stat().st_size == st.st_size and a.stat().st_mtime_ns == st.st_mtime_ns
    new = _register(con, root)
    assert reads == [a.name] and len(new) == 1
    assert _deliveries(con)[-1] == (a.name, hashlib.sha256(a.read_bytes()).hexdigest())

    reads.clear()  # grows: read again, registered again
    with open(b, "ab") as fh:
        fh.write(b"3,2026-11-27\n")
    assert len(_register(con, root)) == 1 and reads == [b.name]


def test_a_file_replaced_by_an_identical_copy_is_read_and_not_registered_twice(env):
    root, folder, con, reads = env
    a = folder / "safe_and_well_visits_20261126.csv"
    a.write_bytes(b"visit_id,visit_date\n1,2026-11-26\n")
    _register(con, root)
    body, st = a.read_bytes(), a.stat()
    a.unlink()
    (folder / "tmp").write_bytes(body)  # sent again: a new file with the same bytes and time
    os.utime(folder / "tmp", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(folder / "tmp", a)
    reads.clear()
    assert _register(con, root) == [] and reads == [a.name], "read again (another file), seen as already registered"
    assert len(_deliveries(con)) == 1
