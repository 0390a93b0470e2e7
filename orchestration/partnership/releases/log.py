"""The release log, `ops.release_log`: one hash-chained entry per protocol per night.

Written by the release engine (`append`) and verified by the audit and `partnership verify-log`
(`verify_log`), both through this module alone: the entry hash and the genesis value exist once,
so what is written and what is checked cannot drift apart. It imports nothing of the builder.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.warehouse.connection import table_exists

RELEASE_LOG_DDL = """
create sequence if not exists ops.release_log_seq start 1;
create table if not exists ops.release_log (
    seq bigint primary key,
    logged_at timestamp not null,
    protocol_id varchar not null,
    protocol_version varchar not null,
    release_date date not null,
    status varchar not null,          -- published | unchanged | not_in_force | blocked
    path varchar,
    content_sha256 varchar,
    reason varchar,
    prev_hash varchar not null,
    entry_hash varchar not null
);
"""
GENESIS = "0" * 64  # the prev_hash of the first entry
_HASHED = ("seq", "protocol_id", "protocol_version", "status", "path", "content_sha256", "reason", "prev_hash")


def entry_hash(row: dict) -> str:
    """The hash of one ops.release_log entry: sha256 of its fields (all but entry_hash) as sorted
    JSON, `logged_at` and `release_date` in ISO form."""
    entry = {k: row[k] for k in _HASHED}
    entry["logged_at"] = row["logged_at"].isoformat()
    entry["release_date"] = row["release_date"].isoformat()
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def append(con: duckdb.DuckDBPyConnection, protocol: Protocol, release_date: date, status: str,
           path: Path | None, content: str | None, reason: str) -> int:
    """Add one entry, chained to the latest, on a writing connection; its sequence number."""
    con.execute(RELEASE_LOG_DDL)
    prev = con.execute("select entry_hash from ops.release_log order by seq desc limit 1").fetchall()
    row = {"seq": con.execute("select nextval('ops.release_log_seq')").fetchall()[0][0],
           "logged_at": datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0),
           "protocol_id": protocol.id, "protocol_version": protocol.version, "release_date": release_date,
           "status": status, "path": str(path) if path else None, "content_sha256": content, "reason": reason,
           "prev_hash": prev[0][0] if prev else GENESIS}
    con.execute("insert into ops.release_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*(row[k] for k in ("seq", "logged_at", "protocol_id", "protocol_version", "release_date", "status",
                                    "path", "content_sha256", "reason", "prev_hash")), entry_hash(row)])
    return row["seq"]


def latest_content(con: duckdb.DuckDBPyConnection, protocol_id: str) -> str | None:
    """The content sha256 of the protocol's latest published (or unchanged) release, if any."""
    con.execute(RELEASE_LOG_DDL)
    row = con.execute(
        """select content_sha256 from ops.release_log where protocol_id = ? and status in ('published', 'unchanged')
           order by seq desc limit 1""", [protocol_id]).fetchall()
    return row[0][0] if row else None


def verify_log(con: duckdb.DuckDBPyConnection) -> tuple[int, list[str]]:
    """(entries checked, problems) for ops.release_log: each entry's hash, the chain, and no gap
    or missing tail (the log's sequence knows how many entries were written)."""
    if not table_exists(con, "ops", "release_log"):
        return 0, []
    cols = [r[0] for r in con.execute("describe ops.release_log").fetchall()]
    rows = [dict(zip(cols, r)) for r in con.execute("select * from ops.release_log order by seq").fetchall()]
    problems = []
    prev = GENESIS
    expected_seq = 1
    for r in rows:
        if r["seq"] != expected_seq:
            problems.append(f"entry {expected_seq}" + (f"..{r['seq'] - 1}" if r["seq"] - 1 > expected_seq else "")
                            + " missing (removed)")
        if r["prev_hash"] != prev:
            problems.append(f"entry {r['seq']}: does not follow the entry before it (chain broken)")
        if entry_hash(r) != r["entry_hash"]:
            problems.append(f"entry {r['seq']}: its content does not match its hash (edited)")
        prev = r["entry_hash"]
        expected_seq = r["seq"] + 1
    last = con.execute("select last_value from duckdb_sequences() where schema_name = 'ops' "
                       "and sequence_name = 'release_log_seq'").fetchall()
    written = last[0][0] if last and last[0][0] is not None else 0
    if written >= expected_seq:
        problems.append(f"entries {expected_seq}..{written} missing (removed from the end of the log)")
    return len(rows), problems
