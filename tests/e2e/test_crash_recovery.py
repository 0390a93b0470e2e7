"""Invariant 3, by killing real runs: a `partnership run` killed (SIGKILL, its whole process group, as
a power cut or the OOM killer would) inside a delivery's transaction, with a release built but not
yet published, and in the middle of the dbt build, leaves a warehouse that opens, every delivery
whole or untouched, no half release in view; the next run completes the work and ends where an
uninterrupted night ends (the session's demo night, on the same files). Two launches at once: the
second waits, then fails cleanly, naming the first.

The moments are found by watching observable state: the test-only pause points
(PARTNERSHIP_TEST_PAUSE_AT, inert unless set) and the night's own log under <data>/logs/.

The sequence only starts processes and watches them: in a whole session it runs in a background
thread beside the tests that never start dbt (tests/conftest.py), and these tests run last."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DEMO_RUN_DATE, TEST_KEY

PROJECT = Path(__file__).resolve().parents[2]
PARTNERSHIP = str(Path(sys.executable).with_name("partnership"))
ROW_SCHEMAS = ("raw", "valid", "quarantine")


def _env(base: dict, data_dir: Path, **extra) -> dict:
    env = {k: v for k, v in base.items() if not k.startswith(("PARTNERSHIP_", "DAGSTER_"))}
    env.update({"PARTNERSHIP_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / "dagster_home"),
                "PARTNERSHIP_PSEUDONYM_KEY": TEST_KEY, "PARTNERSHIP_RUN_DATE": DEMO_RUN_DATE.isoformat(),
                "GX_ANALYTICS_ENABLED": "false", **extra})
    return env


class Launch:
    """One real `partnership run`, in its own process group, its output in files."""

    def __init__(self, sequence: "CrashSequence", name: str, **env):
        data_dir = sequence.data_dir
        self.stop = sequence.stop
        if self.stop.is_set():
            pytest.fail("the session ended")
        self.out = data_dir.parent / f"{name}.out"
        self.err = data_dir.parent / f"{name}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([PARTNERSHIP, "run"], cwd=PROJECT, env=_env(sequence.environ, data_dir, **env),
                                         stdout=out, stderr=err, start_new_session=True)
        sequence.launches.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def wait_for(self, what: str, predicate, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended (exit {self.proc.returncode}) before {what}:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline or self.stop.is_set():
                self.kill()
                pytest.fail(f"{'timed out' if not self.stop.is_set() else 'the session ended'} waiting for {what}")
            time.sleep(0.3)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the run and its children (dbt): nothing gets to clean up
        self.proc.wait()
        # Waiting for the run alone is not enough: a killed child (dbt, holding the warehouse's
        # lock) can still be exiting when the test opens the warehouse.
        deadline = time.monotonic() + 30
        while _group_processes(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def _group_processes(pgid: int) -> list[tuple[int, list[bytes]]]:
    """The live processes (pid, arguments) of a launch's process group (exited ones hold no lock)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        state, _, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state not in ("Z", "X"):
            found.append((int(proc.name), args))
    return found


def _dbt_build_processes(pgid: int) -> list[int]:
    """The `dbt build` processes of a launch's process group."""
    return [pid for pid, args in _group_processes(pgid) if any(a.endswith(b"/dbt") for a in args) and b"build" in args]


def _holder(data_dir: Path) -> dict:
    try:
        return json.loads((data_dir / "warehouse.duckdb.writer.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _newest_log(data_dir: Path, after: set) -> Path | None:
    logs = set((data_dir / "logs").glob("night-*.log")) - after
    return max(logs, key=lambda p: p.stat().st_mtime) if logs else None


def _open(warehouse: Path, copy_if_busy: bool):
    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException:
        if not copy_if_busy:
            raise
        # The session's reference night may still be held open by another process of the session:
        # read a copy of the file (and its write-ahead log) instead.
        copy = Path(tempfile.mkdtemp()) / warehouse.name
        shutil.copyfile(warehouse, copy)
        if warehouse.with_name(warehouse.name + ".wal").exists():
            shutil.copyfile(warehouse.with_name(warehouse.name + ".wal"), copy.with_name(copy.name + ".wal"))
        return duckdb.connect(str(copy), read_only=True)


def _state(data_dir: Path, copy_if_busy: bool = False) -> dict:
    """What a reader sees: the warehouse (it must open), every delivery, the marts, visible releases."""
    with _open(data_dir / "warehouse.duckdb", copy_if_busy) as con:
        deliveries = con.execute(
            """select delivery_id, contract_id, landing_path, status, reason_code, rows_read, rows_valid, rows_quarantined
               from ops.deliveries order by delivery_id""").fetchall()
        rows = {}
        for schema in ROW_SCHEMAS:
            for (table,) in con.execute("select table_name from information_schema.tables where table_schema = ?",
                                        [schema]).fetchall():
                for did, n in con.execute(f'select _delivery_id, count(*) from {schema}."{table}" group by 1').fetchall():
                    rows[(schema, did)] = rows.get((schema, did), 0) + n
        marts = None
        if con.execute("select count(*) from information_schema.tables where table_schema = 'marts' "
                       "and table_name = 'fct_indicator_values'").fetchall()[0][0]:
            # Rates are sums of doubles in parallel aggregation: equal to ~15 digits, not bit for bit.
            marts = sorted(tuple(float(f"{v:.9g}") if isinstance(v, float) else v for v in row)
                           for row in con.execute("select * from marts.fct_indicator_values").fetchall())
    releases = {}
    hidden = []
    for folder in sorted((data_dir / "releases").glob("*/*")):
        if folder.name.startswith("."):
            hidden.append(folder.name)
            continue
        manifest = json.loads((folder / "manifest.json").read_text())  # a visible release is complete...
        for rel, digest in manifest["files"].items():  # ...and its files are the ones its manifest lists
            assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == digest, f"{folder}/{rel}"
        releases[(folder.parent.name, folder.name)] = manifest["row_counts"]
    return {"deliveries": deliveries, "rows": rows, "marts": marts, "releases": releases, "hidden": hidden}


def _assert_every_delivery_whole_or_untouched(state: dict) -> None:
    for did, _, path, status, _, read, valid, quarantined in state["deliveries"]:
        raw = state["rows"].get(("raw", did), 0)
        if status == "accepted":
            assert read == valid + quarantined == raw, path
            assert state["rows"].get(("valid", did), 0) == valid and state["rows"].get(("quarantine", did), 0) == quarantined
        else:
            assert status in ("registered", "rejected"), (path, status)
            assert raw == 0 and ("valid", did) not in state["rows"] and ("quarantine", did) not in state["rows"], path


def _comparable(state: dict) -> dict:
    return {"deliveries": sorted((c or "", p, s, r, rd, v, q) for _, c, p, s, r, rd, v, q in state["deliveries"]),
            "marts": state["marts"], "releases": state["releases"]}


class CrashSequence:
    """The killed and resumed runs on a copy of the demo night's delivered files, started by
    `start()` and run in a thread of their own; `result()` waits for what each moment left."""

    def __init__(self, reference, data_dir: Path):
        self.data_dir = data_dir
        self.stop = threading.Event()
        self.launches: list[Launch] = []
        for sub in ("landing", "reference"):  # the same delivered files (mtimes kept), nothing else
            shutil.copytree(reference.data_dir / sub, data_dir / sub)
        self.seen: dict = {"reference": _state(reference.data_dir, copy_if_busy=True)}
        self.environ = dict(os.environ)  # as it is now: tests running meanwhile may change this process's
        self.future: Future | None = None

    def start(self) -> "CrashSequence":
        from orchestration.partnership.dbt.runner import dbt_parse
        from orchestration.partnership.settings import Settings

        if self.future is not None:
            return self
        # The manifest for this data folder, parsed here, before anything runs beside the sequence:
        # its runs then never write dbt_project/target/manifest.json (each finds it current, as a
        # second night does), and dbt's own builds write only their per-invocation folders.
        dbt_parse(Settings(self.data_dir))
        executor = ThreadPoolExecutor(1, thread_name_prefix="crash-sequence")
        self.future = executor.submit(self._run)
        executor.shutdown(wait=False)
        return self

    def result(self) -> dict:
        return self.start().future.result()

    def close(self) -> None:
        """At the end of the session: nothing of the sequence outlives it."""
        self.stop.set()
        for launch in self.launches:
            launch.kill()
        if self.future is not None:
            self.future.exception()  # wait for the thread

    def _run(self) -> dict:
        data_dir, seen = self.data_dir, self.seen
        # 1. Killed inside a delivery's transaction (rows written, not committed).
        run = Launch(self, "run1", PARTNERSHIP_TEST_PAUSE_AT="ingest:before_commit")
        run.wait_for("a delivery's transaction", lambda: (data_dir / "logs" / "paused-at-ingest:before_commit").exists())
        run.kill()
        seen["ingest"] = _state(data_dir)

        # 2. Killed with a release built and audited in its temporary folder, not yet published.
        run = Launch(self, "run2", PARTNERSHIP_TEST_PAUSE_AT="release:before_publish")
        run.wait_for("a release about to be published", lambda: (data_dir / "logs" / "paused-at-release:before_publish").exists())
        run.kill()
        seen["release"] = _state(data_dir)

        # 3. Killed in the middle of the dbt build (models being rebuilt from the staging layer up).
        # Run 2 built the project and nothing changed since, so this night would rebuild nothing:
        # forget the last build (docs/operations.md) to make it build everything again.
        with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
            con.execute("drop table if exists ops.dbt_build_state")
        logs = set((data_dir / "logs").glob("night-*.log"))
        run = Launch(self, "run3")

        first_seen: list[float] = []

        def dbt_is_building():
            if not _dbt_build_processes(run.pid):
                return False
            first_seen.append(time.monotonic())
            log = _newest_log(data_dir, logs)
            staging = log is not None and re.search(r"OK created sql \w+ model staging\.", log.read_text(errors="replace"))
            return bool(staging) or time.monotonic() - first_seen[0] > 10

        run.wait_for("dbt building models", dbt_is_building)
        seen["dbt_running_at_kill"] = bool(_dbt_build_processes(run.pid))
        run.kill()
        seen["dbt"] = _state(data_dir)

        # 4. Two launches at once: the first completes the night's work; the second waits, then gives up cleanly.
        logs = set((data_dir / "logs").glob("night-*.log"))
        first = Launch(self, "run4")
        first.wait_for("the first launch to hold the writer lock", lambda: _holder(data_dir).get("pid") == first.pid)
        second = Launch(self, "run5", PARTNERSHIP_LOCK_TIMEOUT_S="15")
        second.proc.wait(timeout=300)
        seen["second"] = (second.proc.returncode, second.output(), first.pid)
        first.proc.wait(timeout=1800)
        seen["first"] = (first.proc.returncode, first.output())
        seen["new_logs"] = set((data_dir / "logs").glob("night-*.log")) - logs
        seen["final"] = _state(data_dir)
        return seen


@pytest.fixture(scope="module")
def crashes(crash_sequence):
    return crash_sequence.result()


def test_killed_inside_a_delivery_transaction_the_delivery_stays_registered_with_none_of_its_rows(crashes):
    state = crashes["ingest"]
    _assert_every_delivery_whole_or_untouched(state)
    assert any(s == "registered" for _, _, _, s, *_ in state["deliveries"])  # the one interrupted, and those after it
    assert state["marts"] is None and state["releases"] == {}


def test_killed_before_a_release_is_published_nothing_half_made_is_visible(crashes):
    state, reference = crashes["release"], crashes["reference"]
    _assert_every_delivery_whole_or_untouched(state)
    assert not any(s == "registered" for _, _, _, s, *_ in state["deliveries"])  # the next run finished ingestion
    assert state["marts"] == reference["marts"]
    assert any(h.startswith(".building-") for h in state["hidden"])  # it was killed mid-release...
    assert state["releases"] == {}  # ...and no release, half or whole, is in view


def test_killed_during_dbt_the_marts_are_the_old_ones_whole(crashes):
    state, reference = crashes["dbt"], crashes["reference"]
    assert crashes["dbt_running_at_kill"]  # killed while `dbt build` was writing
    _assert_every_delivery_whole_or_untouched(state)
    assert state["marts"] == reference["marts"]
    assert state["releases"] == {}


def test_the_next_run_completes_the_work_and_ends_where_an_uninterrupted_night_ends(crashes):
    code, output = crashes["first"]
    assert code == 0, output[-3000:]
    state = crashes["final"]
    _assert_every_delivery_whole_or_untouched(state)
    assert _comparable(state) == _comparable(crashes["reference"])
    assert state["releases"]  # published, complete, hashes verified


def test_a_second_launch_while_the_first_writes_waits_then_fails_cleanly_naming_it(crashes):
    code, output, first_pid = crashes["second"]
    assert code == 2, output[-3000:]
    message = " ".join(output.split())
    assert "waiting for the warehouse" in message
    assert f"pid {first_pid}" in message and "partnership run" in message and "nothing was done" in message
    assert len(crashes["new_logs"]) == 1  # only the first launch ran a night
