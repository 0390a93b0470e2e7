"""The ops snapshot (`partnership/ops/snapshot.py`), read-only: deliveries, the release log and
its verification, standing rejections, opt-out and consent exclusions."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import duckdb

from orchestration.partnership.ops.snapshot import snapshot_path
from orchestration.partnership.settings import Settings

DELIVERY_COLUMNS = ("delivery_id", "contract_id", "agency", "extract", "file_name", "sha256", "size_bytes",
                    "arrived_at", "status", "reason_code", "reason", "rows_read", "rows_valid",
                    "rows_quarantined", "rule_counts", "warnings", "processed_at")


class OpsSnapshot:
    """One read of the snapshot file. Opening is cheap (a small file); each query opens and closes,
    so the night's atomic replacement is picked up at the next request."""

    def __init__(self, settings: Settings):
        self.path: Path = snapshot_path(settings)

    @property
    def available(self) -> bool:
        return self.path.exists()

    def _rows(self, sql: str, params: list | None = None) -> list[dict]:
        if not self.available:
            return []
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            cur = con.execute(sql, params or [])
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]
        finally:
            con.close()

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
        return bool(self._rows("select 1 from information_schema.tables where table_name = ?", [table]))


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
