"""The portal's read-only view of `ops`: a small DuckDB file, `<data>/portal/ops_snapshot.duckdb`.

DuckDB allows one writing process per file and the night holds the warehouse for long, so the
portal never opens the warehouse: it reads this copy, written at the end of every run (night,
ingest, retention: the run executor calls `write_ops_snapshot` while it still holds the writer
lock) and by `partnership portal` when none exists. It is written aside and renamed into place,
so a reader sees the old copy or the new one, never half of one; it is readable by its owner
alone. What it holds: every delivery, the release log with the release log module's own
verification of it, the standing rejections, and each protocol's opt-out and consent exclusions.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from orchestration.partnership.ingest.holdback import standing_rejections
from orchestration.partnership.releases import placement
from orchestration.partnership.releases.log import verify_log
from orchestration.partnership.releases.protocols import Protocol, load_protocols
from orchestration.partnership.releases.scope import quote, row_conditions
from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import (
    configure,
    table_exists,
    writer_lock,
)

SNAPSHOT_TABLES = ("deliveries", "release_log")


def snapshot_path(settings: Settings) -> Path:
    return settings.data_dir / "portal" / "ops_snapshot.duckdb"


def exclusion_counts(con: duckdb.DuckDBPyConnection, protocol: Protocol) -> list[tuple]:
    """(protocol, output table, rule, rows excluded, people excluded) of each person-level output's
    opt-out and consent rules: the output's rows under its other filters, less those the rule also
    allows, counted with the release's own row conditions (`scope.row_conditions`); and of each
    output naming household members, those its placement rule keeps out (`placement`)."""
    out_rows = []
    for out in protocol.outputs:
        rules = [k for k in ("opt_out", "consent") if out.get(k)]
        schema, table = out["source"].split(".", 1)
        if not table_exists(con, schema, table):
            continue
        placed = placement.condition(con, out)
        if placed is not None:  # members no identity source places at their household: listed for review
            person = out["identifiers"]["person_column"]
            rows_all, people_all = _count(con, out["source"], out, person)
            rows_kept, people_kept = _count(con, out["source"], out, person, placed)
            out_rows.append((protocol.id, out["table"], "placement", rows_all - rows_kept, people_all - people_kept))
        if not rules:
            continue
        if out.get("opt_out") and not table_exists(con, "linkage", "persons"):
            continue
        person = (out.get("opt_out") or {}).get("person_column") or next(iter((out.get("pseudonyms") or {}).values()), None)
        base = {k: v for k, v in out.items() if k not in ("opt_out", "consent")}
        for rule in rules:
            rows_all, people_all = _count(con, out["source"], base, person)
            rows_kept, people_kept = _count(con, out["source"], base | {rule: out[rule]}, person)
            out_rows.append((protocol.id, out["table"], rule, rows_all - rows_kept, people_all - people_kept))
    return out_rows


def _count(con, source: str, out: dict, person: str | None, extra: tuple[str, list] | None = None) -> tuple[int, int]:
    clauses, params = row_conditions(out)
    if extra is not None:
        clauses, params = [*clauses, extra[0]], [*params, *extra[1]]
    where = (" where " + " and ".join(clauses)) if clauses else ""
    people = f"count(distinct s.{quote(person)})" if person else "0"
    return tuple(con.execute(f"select count(*), {people} from {source} s{where}", params).fetchall()[0])


def write_ops_snapshot(settings: Settings, protocols: dict[str, Protocol] | None = None) -> Path | None:
    """Write the portal's snapshot of `ops` (None when there is no warehouse yet). Holds the writer
    lock (re-entrant: a run that holds it calls this for free) so that the warehouse is read whole."""
    if not settings.warehouse_path.exists():
        return None
    protocols = protocols if protocols is not None else load_protocols(settings.protocols_dir)
    dest = snapshot_path(settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(dest.parent, 0o700)
    tmp = dest.with_name(f"ops_snapshot_{os.getpid()}.tmp.duckdb")
    tmp.unlink(missing_ok=True)
    try:
        with writer_lock(settings.warehouse_path, purpose="ops snapshot for the portal"):
            con = configure(duckdb.connect(str(tmp)))  # in the owner-only folder; made 0600 before it is renamed
            try:
                _copy(con, settings, protocols)
            finally:
                con.close()
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    finally:  # nothing half-written is left beside the snapshot
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return dest


def _copy(con: duckdb.DuckDBPyConnection, settings: Settings, protocols: dict[str, Protocol]) -> None:
    own = con.execute("select current_database()").fetchall()[0][0]
    con.execute("attach ? as w (read_only)", [str(settings.warehouse_path)])
    con.execute("use w")
    entries, problems = verify_log(con)
    rejections = standing_rejections(con) if table_exists(con, "ops", "deliveries") else {}
    exclusions = [row for p in protocols.values() for row in exclusion_counts(con, p)]
    present = [t for t in SNAPSHOT_TABLES if table_exists(con, "ops", t)]
    con.execute(f"use {quote(own)}")
    for t in present:
        con.execute(f"create table {t} as select * from w.ops.{t}")
    if "deliveries" not in present:
        con.execute("create table deliveries as select * from (select 1 as delivery_id) where false")
    con.execute("""create table log_verification (checked_at timestamp, entries bigint, problems varchar)""")
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    con.execute("insert into log_verification values (?, ?, ?)", [now, entries, json.dumps(problems)])
    con.execute("create table standing_rejections (contract_id varchar, reason varchar)")
    if rejections:
        con.executemany("insert into standing_rejections values (?, ?)",
                        [(c, r) for c, reasons in sorted(rejections.items()) for r in reasons])
    con.execute("""create table exclusions (protocol_id varchar, output_table varchar, rule varchar,
                   rows_excluded bigint, people_excluded bigint)""")
    if exclusions:
        con.executemany("insert into exclusions values (?, ?, ?, ?, ?)", exclusions)
    con.execute("detach w")


def refresh_ops_snapshot(settings: Settings, protocols: dict[str, Protocol] | None = None) -> str:
    """`write_ops_snapshot` at the end of a run: a failure is returned as a message, not raised,
    because the run's own work is done and the portal keeps the previous snapshot."""
    try:
        write_ops_snapshot(settings, protocols)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the old snapshot; the caller reports it
        return f"the portal's ops snapshot was not refreshed: {type(exc).__name__}: {exc}"
    return ""
