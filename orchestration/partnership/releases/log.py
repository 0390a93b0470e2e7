"""The release log, `ops.release_log`: one hash-chained, signed entry per protocol per night.

Written by the release engine (`append`) and verified by the audit and `partnership audit verify`
(`verify_log`), both through this module alone: the entry hash and the genesis value exist once,
so what is written and what is checked cannot drift apart. It imports nothing of the builder.

Each entry is signed: HMAC of its hash under a key derived from the pseudonymisation key
(`signing.log_key`), never stored. A hash chain alone can be recomputed by whoever can write the
warehouse; the signatures cannot, without the secret. An entry that published a folder also
holds the sha256 of the folder's manifest, so the signed log pins every file the folder holds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership.releases import signing
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
    status varchar not null,          -- published | unchanged | held_back | blocked | not_in_force | failed (releases/outcomes.py)
    path varchar,
    content_sha256 varchar,
    reason varchar,
    prev_hash varchar not null,
    entry_hash varchar not null,
    manifest_sha256 varchar,          -- of the published folder's manifest.json (published, unchanged)
    signature varchar                 -- HMAC(log key, entry_hash): signing.sign_entry
);
alter table ops.release_log add column if not exists manifest_sha256 varchar;
alter table ops.release_log add column if not exists signature varchar;
"""
GENESIS = "0" * 64  # the prev_hash of the first entry
_HASHED = ("seq", "protocol_id", "protocol_version", "status", "path", "content_sha256", "reason", "prev_hash")


def entry_hash(row: dict) -> str:
    """The hash of one ops.release_log entry: sha256 of its fields (all but entry_hash) as sorted
    JSON, `logged_at` and `release_date` in ISO form."""
    entry = {k: row[k] for k in _HASHED}
    entry["logged_at"] = row["logged_at"].isoformat()
    entry["release_date"] = row["release_date"].isoformat()
    if row.get("manifest_sha256") is not None:  # entries written before it was kept hash as they did
        entry["manifest_sha256"] = row["manifest_sha256"]
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def append(con: duckdb.DuckDBPyConnection, protocol: Protocol, release_date: date, status: str,
           path: Path | None, content: str | None, reason: str, manifest_sha256: str | None = None) -> int:
    """Add one entry, chained to the latest and signed, on a writing connection; its sequence number."""
    key = signing.log_key(ps.load_key())  # no key, no entry: an unsigned entry would look forged
    con.execute(RELEASE_LOG_DDL)
    prev = head(con)[1]
    row = {"seq": con.execute("select nextval('ops.release_log_seq')").fetchall()[0][0],
           "logged_at": datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0),
           "protocol_id": protocol.id, "protocol_version": protocol.version, "release_date": release_date,
           "status": status, "path": str(path) if path else None, "content_sha256": content, "reason": reason,
           "prev_hash": prev, "manifest_sha256": manifest_sha256}
    row["entry_hash"] = entry_hash(row)
    row["signature"] = signing.sign_entry(key, row["entry_hash"])
    cols = (*_HASHED[:1], "logged_at", *_HASHED[1:3], "release_date", *_HASHED[3:], "entry_hash", "manifest_sha256",
            "signature")
    con.execute(f"insert into ops.release_log ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
                [row[k] for k in cols])
    return row["seq"]


def head(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    """(seq, entry hash) of the latest entry: the log's head, which a manifest is anchored to;
    (0, GENESIS) for an empty log."""
    if not table_exists(con, "ops", "release_log"):
        return 0, GENESIS
    row = con.execute("select seq, entry_hash from ops.release_log order by seq desc limit 1").fetchall()
    return (row[0][0], row[0][1]) if row else (0, GENESIS)


def entries(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every entry, in order, as dicts of its columns."""
    if not table_exists(con, "ops", "release_log"):
        return []
    cur = con.execute("select * from ops.release_log order by seq")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def latest_content(con: duckdb.DuckDBPyConnection, protocol_id: str) -> str | None:
    """The content sha256 of the protocol's latest published (or unchanged) release, if any."""
    con.execute(RELEASE_LOG_DDL)
    row = con.execute(
        """select content_sha256 from ops.release_log where protocol_id = ? and status in ('published', 'unchanged')
           order by seq desc limit 1""", [protocol_id]).fetchall()
    return row[0][0] if row else None


def verify_log(con: duckdb.DuckDBPyConnection, key: bytes | None = None) -> tuple[int, list[str]]:
    """(entries checked, problems) for ops.release_log: each entry's hash, the chain, no gap or
    missing tail (the log's sequence knows how many entries were written), and, given the
    pseudonymisation `key`, each entry's signature."""
    if not table_exists(con, "ops", "release_log"):
        return 0, []
    rows = entries(con)
    problems = []
    log_key = signing.log_key(key) if key is not None else None
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
        if log_key is not None and not signing.entry_signed(log_key, entry_hash(r), r.get("signature")):
            problems.append(f"entry {r['seq']}: " + ("not signed" if not r.get("signature") else
                            "its signature does not match its content (edited or written without the key)"))
        prev = r["entry_hash"]
        expected_seq = r["seq"] + 1
    last = con.execute("select last_value from duckdb_sequences() where schema_name = 'ops' "
                       "and sequence_name = 'release_log_seq'").fetchall()
    written = last[0][0] if last and last[0][0] is not None else 0
    if written >= expected_seq:
        problems.append(f"entries {expected_seq}..{written} missing (removed from the end of the log)")
    return len(rows), problems
