"""The ops snapshot (`partnership/ops/snapshot.py`), read-only: deliveries, the release log and
its verification, standing rejections, opt-out and consent exclusions."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import duckdb

from orchestration.partnership.ops.snapshot import snapshot_path
from orchestration.partnership.settings import Settings

DELIVERY_COLUMNS = ("delivery_id", "contract_id", "agency", "extract", "file_name", "sha256", "size_bytes",
                    "arrived_at", "status", "reason_code", "reason", "rows_read", "rows_valid",
                    "rows_quarantined", "rule_counts", "warnings", "processed_at")


_open: dict[str, tuple[tuple[int, int], duckdb.DuckDBPyConnection, frozenset[str]]] = {}
_open_guard = threading.Lock()


def _connection(path: Path) -> tuple[duckdb.DuckDBPyConnection, frozenset[str]]:
    """A read-only connection to the snapshot file as it is now, and its tables, kept while the
    file is the same (inode and mtime): a run replaces the file whole, and the next request opens
    the new one. One thread: the snapshot's queries are small, and a page waits for none."""
    st = path.stat()
    stamp = (st.st_ino, st.st_mtime_ns)
    with _open_guard:
        held = _open.get(str(path))
        if held and held[0] == stamp:
            return held[1], held[2]
        con = duckdb.connect(str(path), read_only=True)
        con.execute("set threads = 1")  # a setting, not a connect config: other readers may open it as they like
        tables = frozenset(t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall())
        _open[str(path)] = (stamp, con, tables)  # the old one closes when its last cursor is gone
        return con, tables


class OpsSnapshot:
    """The snapshot as this request reads it: each query on its own cursor of the kept connection."""

    def __init__(self, settings: Settings):
        self.path: Path = snapshot_path(settings)

    @property
    def available(self) -> bool:
        return self.path.exists()

    def _rows(self, sql: str, params: list | None = None) -> list[dict]:
        if not self.available:
            return []
        cur = _connection(self.path)[0].cursor()
        try:
            cur.execute(sql, params or [])
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]
        finally:
            cur.close()

    def taken_at(self) -> datetime | None:
        rows = self._rows("select checked_at from log_verification")
        return rows[0]["checked_at"] if rows else None

    def deliveries(self, agency: str) -> list[dict]:
        """The agency's deliveries, newest first."""
        rows = self._rows(f"select {', '.join(DELIVERY_COLUMNS)} from deliveries where agency = ? "
                          "order by arrived_at desc, delivery_id desc", [agency])
        for r in rows:
            r["rule_counts"] = json.loads(r["rule_counts"] or "{}")
            r["warnings"] = json.loads(r["warnings"] or "[]")
        return rows

    def delivery(self, agency: str, delivery_id: int) -> dict | None:
        """One delivery, only if it is that agency's."""
        return next((d for d in self.deliveries(agency) if d["delivery_id"] == delivery_id), None)

    def delivered_hashes(self, agency: str) -> dict[str, int]:
        return {r["sha256"]: r["delivery_id"] for r in self._rows(
            "select sha256, max(delivery_id) as delivery_id from deliveries where agency = ? group by sha256", [agency])}

    def accepted_duplicate(self, contract_id: str, sha256: str) -> int | None:
        """The accepted delivery of the same extract with the same bytes, if any."""
        rows = self._rows("select min(delivery_id) as d from deliveries where contract_id = ? and sha256 = ? "
                          "and status = 'accepted'", [contract_id, sha256])
        return rows[0]["d"] if rows else None

    def release_log(self) -> list[dict]:
        return self._rows("select seq, logged_at, protocol_id, protocol_version, release_date, status, path, "
                          "content_sha256, reason, entry_hash from release_log order by seq desc") \
            if self._has("release_log") else []

    def verification(self) -> dict | None:
        rows = self._rows("select checked_at, entries, problems from log_verification")
        if not rows:
            return None
        return {**rows[0], "problems": json.loads(rows[0]["problems"])}

    def standing_rejections(self) -> list[dict]:
        return self._rows("select contract_id, reason from standing_rejections order by contract_id")

    def exclusions(self) -> list[dict]:
        return self._rows("select * from exclusions order by protocol_id, output_table, rule")

    def _has(self, table: str) -> bool:
        return self.available and table in _connection(self.path)[1]


def failures_by_rule(deliveries: list[dict]) -> tuple[list[str], list[dict]]:
    """(arrival days oldest first, one row per extract and rule with its failing rows per day):
    row rules count failing rows, a rejected delivery counts once under its reason."""
    by_rule: dict[str, dict[str, int]] = defaultdict(dict)
    days: set[str] = set()
    for d in deliveries:
        day = str(d["arrived_at"])[:10]
        days.add(day)
        counts = dict(d["rule_counts"])
        if d["status"] == "rejected" and d["reason_code"]:
            counts = {f"(file) {d['reason_code']}": 1}
        for rule, n in counts.items():
            key = f"{d['extract']}: {rule}"
            by_rule[key][day] = by_rule[key].get(day, 0) + n
    ordered = sorted(days)
    return ordered, [{"rule": k, "counts": [by_rule[k].get(day) for day in ordered]} for k in sorted(by_rule)]
