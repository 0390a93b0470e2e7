"""The Dagster instance's event log: Dagster's own SQLite storage (one database per run plus an
index), with each database kept open for the life of the process.

Dagster's `SqliteEventLogStorage` opens and closes a connection for every event it stores, and in
WAL mode closing the last connection checkpoints and syncs the files, so a night of thousands of
events (every dbt test is an asset check) would wait on fsyncs before and between its steps
(docs/operations.md, Deploy, has the figures). Here a connection stays open per database (the most
recently used few), with `synchronous=NORMAL`: a commit appends to the WAL without an fsync, and
the WAL is synced at checkpoints. A power cut can lose the last events of a run, never corrupt
the database; the warehouse's own state is in DuckDB, and a run that died is marked failed by
the next launch (`reclaim_from_dead_runs`).

Two more per-event costs are avoided: Dagster's `has_table`, asked before storing each asset check
event, opened the index database anew (a table found is remembered), and a batch of events (a
run's planned materializations and checks, when DAGSTER_EVENT_BATCH_SIZE is set) is stored in one
transaction per database instead of one per event and database.

Readers in other processes (the webserver, the daemon) see every commit: WAL readers read the
log. The webserver follows a running run by watching the run's database file; between
checkpoints only the `-wal` file changes, so the watch covers both.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as db
from dagster import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.pool import StaticPool
from watchdog.events import PatternMatchingEventHandler
from watchdog.observers import Observer

MAX_OPEN = 16  # databases kept open; the webserver may read many runs' shards


def default_base_dir() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError("the partnership event log storage needs DAGSTER_HOME (or base_dir in dagster.yaml)")
    return os.path.join(home, "history", "runs")


class PartnershipEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with a connection kept open per database (see the module docstring).

    `base_dir` defaults to `$DAGSTER_HOME/history/runs`, where Dagster's default storage keeps the
    same files, so a data folder moved or restored elsewhere keeps its history."""

    def __init__(self, base_dir: str | None = None, inst_data=None):
        self._engines: OrderedDict[str, db.engine.Engine] = OrderedDict()
        self._batch: tuple[int, dict[str, db.engine.Connection]] | None = None
        self._tables_found: set[str] = set()
        super().__init__(base_dir or default_base_dir(), inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> db.engine.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        # One connection per database, used under `_db_lock` (held for every use), so it may be
        # shared between this process's threads.
        engine = db.create_engine(self.conn_string_for_shard(shard), poolclass=StaticPool,
                                  connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                                                "check_same_thread": False})
        db.event.listen(engine, "connect", lambda conn, _record: conn.execute("PRAGMA synchronous=NORMAL"))
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > MAX_OPEN:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.engine.Connection]:
        batch = self._batch
        if batch is not None and batch[0] == threading.get_ident():
            # inside `store_event_batch` (which holds `_db_lock`): one transaction per database
            conn = batch[1].get(shard)
            if conn is None:
                conn = batch[1][shard] = self._engine(shard).connect()
                conn.begin()
            yield conn
            return
        with self._db_lock:
            with self._engine(shard).connect() as conn:
                with conn.begin():
                    yield conn

    def store_event_batch(self, events) -> None:
        """The events of one batch (Dagster sends a run's planned materializations and asset checks
        as one batch when DAGSTER_EVENT_BATCH_SIZE is set), stored as `store_event`
        stores each, in one transaction per database instead of two or three per event."""
        with self._db_lock:
            conns: dict[str, db.engine.Connection] = {}
            self._batch = (threading.get_ident(), conns)
            try:
                for event in events:
                    self.store_event(event)
                for conn in conns.values():
                    conn.commit()
            except BaseException:
                for conn in conns.values():
                    conn.rollback()
                raise
            finally:
                self._batch = None
                for conn in conns.values():
                    conn.close()

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before storing each asset check event whether the index has the checks'
        table, each time opening the index database anew. A table once there stays there (tables
        are only ever added, by migrations; `wipe` deletes the files): kept once found."""
        if table_name in self._tables_found:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables_found.add(table_name)
        return found

    def _close_all(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._close_all()  # the files are deleted: no connection may keep writing to them
        self._tables_found.clear()
        super().wipe()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()

    def watch(self, run_id: str, cursor, callback) -> None:
        if not self._obs:
            self._obs = Observer()
            self._obs.start()
        watchdog = _WalWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (watchdog, self._obs.schedule(watchdog, self._base_dir, recursive=True))


class _WalWatchdog(SqliteEventLogStorageWatchdog):
    """Dagster's run watch, also woken by the run database's WAL file."""

    def __init__(self, storage, run_id, callback, cursor):
        super().__init__(storage, run_id, callback, cursor)
        PatternMatchingEventHandler.__init__(self, patterns=[self._log_path, self._log_path + "-wal"])

    def on_modified(self, event) -> None:
        self._process_log()
