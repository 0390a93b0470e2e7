"""A night runs Great Expectations in a warm worker process: same verdicts as in process, and a
dead worker costs nothing but the warm start."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import duckdb

import orchestration.partnership.validation.batch as gx_batch
from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.validation.engine import assess


def _verdicts(a):
    return [(r.rule, r.severity, r.passed, r.observed, r.expected) for r in a.rules if r.level == "batch"]


def test_the_worker_gives_the_same_batch_verdicts_and_a_dead_worker_falls_back(demo_night, tmp_path):
    settings, _ = demo_night
    contracts = load_contracts(settings.contracts_dir)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("""select contract_id, archive_path, file_name, sha256, arrived_at from ops.deliveries
                              where status = 'accepted' and rows_read > 0 order by delivery_id limit 3""").fetchall()
    assert rows
    here = {}
    for cid, path, name, sha, arrived in rows:
        here[name] = _verdicts(assess(Path(path), contracts[cid],
                                      file_name=name, sha256=sha, arrived_at=arrived, docs_dir=tmp_path / "here",
                                      label=f"here {name}"))
        assert len(here[name]) > 1, "the contract has batch rules besides the quarantine rate"
    gx_batch.start_worker(force=True)
    try:
        pid = gx_batch._WORKER.proc.pid
        assert gx_batch._WORKER.call(gx_batch.worker_pid) == pid != os.getpid()
        for cid, path, name, sha, arrived in rows:
            a = assess(Path(path), contracts[cid], file_name=name,
                       sha256=sha, arrived_at=arrived, docs_dir=tmp_path / "worker", label=f"worker {name}")
            assert _verdicts(a) == here[name]
        gx_batch.build_docs(tmp_path / "worker")
        assert len(list((tmp_path / "worker" / "data_docs" / "validations").rglob("*.html"))) == len(rows)
        os.kill(pid, signal.SIGKILL)
        cid, path, name, sha, arrived = rows[0]
        a = assess(Path(path), contracts[cid], file_name=name,
                   sha256=sha, arrived_at=arrived, docs_dir=tmp_path / "after", label="after the worker died")
        assert _verdicts(a) == here[name]
        assert gx_batch._WORKER is None
    finally:
        gx_batch.stop_worker()


def test_stopping_the_worker_is_quick_whether_or_not_it_was_used():
    import time

    # Unused (still importing GX): stopped at once, not after the import.
    gx_batch.start_worker(force=True)
    proc = gx_batch._WORKER.proc
    t = time.monotonic()
    gx_batch.stop_worker()
    assert proc.returncode is not None and time.monotonic() - t < 2
    # Used: it has finished its work, and ends without tearing down GX's modules.
    gx_batch.start_worker(force=True)
    proc = gx_batch._WORKER.proc
    assert gx_batch._WORKER.call(gx_batch.worker_pid) == proc.pid
    t = time.monotonic()
    gx_batch.stop_worker()
    assert proc.returncode == 0 and time.monotonic() - t < 2
