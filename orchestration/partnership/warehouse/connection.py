"""The secure-zone warehouse: one DuckDB file, one writer at a time.

Connections are opened per operation and closed at once, so that the next step (or dbt)
can open the file: DuckDB allows one writing process per file.

Across processes, one launch at a time writes: every writing connection, the dbt build and
every run of the code location hold the *writer lock*, an advisory `fcntl` lock on
`<warehouse>.writer.lock` beside the file. It is re-entrant within a process (a run holds it,
its steps take it again for free), released by the kernel if the holder dies (a crash never
leaves it stuck), and says who holds it: pid, what, since when.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from orchestration.partnership.warehouse.permissions import lock_down

SCHEMAS = ("ops", "raw", "quarantine", "valid", "identity")

OPS_DDL = """
create sequence if not exists ops.delivery_id_seq start 1;
create table if not exists ops.deliveries (
    delivery_id bigint primary key,
    contract_id varchar,
    agency varchar,
    extract varchar,
    file_name varchar not null,
    landing_path varchar not null,
    sha256 varchar not null,
    size_bytes bigint not null,
    arrived_at timestamp not null,
    registered_at timestamp not null,
    status varchar not null,            -- registered | accepted | rejected
    reason_code varchar,                -- the rule kind that rejected the whole delivery
    reason varchar,                     -- a message safe to show the data owner
    contract_version varchar,
    rows_read bigint,
    rows_valid bigint,
    rows_quarantined bigint,
    rule_counts json,                   -- rows failing each row rule
    warnings json,                      -- batch rules at warning severity
    archive_path varchar,
    processed_at timestamp
);
create table if not exists ops.settings (name varchar primary key, value varchar not null);
"""

LOCK_TIMEOUT_ENV = "PARTNERSHIP_LOCK_TIMEOUT_S"
DEFAULT_LOCK_TIMEOUT_S = 3600.0
MEMORY_LIMIT_ENV = "PARTNERSHIP_MEMORY_LIMIT"
# DuckDB's own default is 80% of the machine's memory, and it keeps what it reads and writes
# cached up to that: a 25-million-row county night's dbt build held 11 GiB. Bounded, it spills
# joins and sorts to `<warehouse>.tmp/` instead (docs/operations.md, Memory).
DEFAULT_MEMORY_LIMIT = "4GB"
# Linkage's working in-memory database (all of one night's records at a full link) has its own
# setting, for a machine that gives linkage more than the warehouse's connections; unset, it is
# the night's limit, so the night's process stays within one limit (docs/operations.md, Memory).
LINKAGE_MEMORY_LIMIT_ENV = "PARTNERSHIP_LINKAGE_MEMORY_LIMIT"
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


class SettingError(ValueError):
    pass


class WarehouseLocked(RuntimeError):
    pass


def lock_path(warehouse: Path) -> Path:
    warehouse = Path(warehouse)
    return warehouse.with_name(warehouse.name + ".writer.lock")


_held: dict[str, list] = {}  # lock file -> [fd, depth] for locks this process holds
_held_guard = threading.Lock()


def lock_timeout() -> float:
    return float(os.environ.get(LOCK_TIMEOUT_ENV) or DEFAULT_LOCK_TIMEOUT_S)


def memory_limit(env: str = MEMORY_LIMIT_ENV) -> str:
    """The most memory each DuckDB of the night (a warehouse connection, dbt's) may hold:
    `PARTNERSHIP_MEMORY_LIMIT`, a size such as `4GB` or `6GiB`, else 4GB. With `env`
    (`LINKAGE_MEMORY_LIMIT_ENV`): that setting when given, else the same."""
    value = os.environ.get(env) or (memory_limit() if env != MEMORY_LIMIT_ENV else DEFAULT_MEMORY_LIMIT)
    m = _SIZE.fullmatch(value)
    if not m or float(m.group(1)) <= 0:
        raise SettingError(f"{env}={value!r} is not a memory size: write a positive number and a "
                           f"unit, e.g. 4GB, 6GiB or 512MB")
    return f"{m.group(1)}{m.group(2).upper().replace('I', 'i')}"


def configure(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Apply the night's memory limit to a connection's database (set per database, not per
    connection: a config passed to `connect` would refuse a second connection to the file made
    without it)."""
    con.execute(f"set memory_limit = '{memory_limit()}'")
    return con


def holder(warehouse: Path) -> dict | None:
    """Who holds the writer lock now ({pid, host, purpose, since}), or None if nobody does."""
    path = lock_path(warehouse)
    key = str(path)
    with _held_guard:
        if key in _held:
            return _read_holder(path)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path) or {"pid": None, "purpose": "unknown", "since": None, "host": None}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return None


def describe(info: dict | None) -> str:
    if not info:
        return "nobody"
    return (f"pid {info.get('pid')} on {info.get('host')} ({info.get('purpose') or 'unknown'}), "
            f"holding it since {info.get('since')}")


@contextmanager
def writer_lock(warehouse: Path, purpose: str = "", timeout: float | None = None,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the warehouse's writer lock. Waits up to `timeout` seconds (default: the environment's
    PARTNERSHIP_LOCK_TIMEOUT_S, else one hour), calling `on_wait` once with who holds it; then
    raises WarehouseLocked naming the holder."""
    path = lock_path(warehouse)
    key = str(path)
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[key][1] -= 1
        return
    lock_down()  # the lock file, like everything beside the warehouse, is the owner's alone
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by child processes
    limit = lock_timeout() if timeout is None else timeout
    deadline = time.monotonic() + limit
    waited = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseLocked(
                        f"the warehouse {warehouse} is being written by another launch: {describe(_read_holder(path))}. "
                        f"Waited {limit:.0f}s ({LOCK_TIMEOUT_ENV}); nothing was done. Try again when it has finished.") from None
                if not waited and on_wait is not None:
                    on_wait(describe(_read_holder(path)))
                waited = True
                time.sleep(min(0.5, max(0.01, deadline - time.monotonic())))
    except BaseException:
        os.close(fd)
        raise
    info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
            "since": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    with _held_guard:
        _held[key] = [fd, 1]
    try:
        yield
    finally:
        with _held_guard:
            del _held[key]
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextmanager
def connect(path: Path, read_only: bool = False, retries: int = 20, wait_s: float = 0.5) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open, yield, close. A writing connection holds the writer lock (waiting for another launch
    to finish); any connection retries while DuckDB reports the file in use, then fails clearly."""
    path = Path(path)
    lock_down()  # DuckDB creates the file, its WAL and its spill folder under this process's umask
    path.parent.mkdir(parents=True, exist_ok=True)
    memory_limit()  # a bad setting fails before anything is opened
    with (writer_lock(path, purpose="warehouse connection") if not read_only else _nothing()):
        last: Exception | None = None
        for _ in range(retries):
            try:
                con = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                last = exc
                time.sleep(wait_s)
        else:
            raise WarehouseLocked(f"{path} is in use by another process (waited {retries * wait_s:.0f}s; "
                                  f"writer lock: {describe(holder(path))}): {last}")
        try:
            yield configure(con)
        finally:
            con.close()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    for schema in SCHEMAS:
        con.execute(f"create schema if not exists {schema}")
    con.execute(OPS_DDL)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether `schema.table` exists in the database `con` is connected to."""
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                            [schema, table]).fetchall()[0][0])


def tables_in(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    """The names of the tables of one schema."""
    return {t for (t,) in con.execute("select table_name from information_schema.tables where table_schema = ?",
                                      [schema]).fetchall()}
