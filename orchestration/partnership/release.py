"""The release engine: for each protocol in force, a physically separate output.

Built in a temporary folder beside its destination, audited there against the protocol
file (fail closed), then moved into place with one rename, and recorded in the
hash-chained `ops.release_log`. A recipient's files hold only what its protocol allows.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from . import disclosure
from .protocols import Protocol
from .warehouse import connect

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
GENESIS = "0" * 64


class ReleaseBlocked(RuntimeError):
    """The audit found the built output breaks its protocol. Nothing was published."""


@dataclass
class ReleaseResult:
    protocol_id: str
    status: str
    path: Path | None = None
    reason: str = ""
    row_counts: dict[str, int] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _where(filters: dict) -> tuple[str, list]:
    clauses, params = [], []
    for key, allowed in (filters or {}).items():
        if key == "cells":
            ors = []
            for cell in allowed:
                ors.append("(" + " and ".join(f'"{k}" = ?' for k in cell) + ")")
                params += list(cell.values())
            clauses.append("(" + " or ".join(ors) + ")")
        else:
            clauses.append(f'"{key}" in (' + ", ".join("?" for _ in allowed) + ")")
            params += list(allowed)
    return (" where " + " and ".join(clauses)) if clauses else "", params


def build_tables(con: duckdb.DuckDBPyConnection, protocol: Protocol) -> dict[str, pl.DataFrame]:
    """The protocol's outputs, read from the warehouse and disclosure-controlled."""
    tables = {}
    for out in protocol.outputs:
        cols = ", ".join(f'"{c}"' for c in out["columns"])
        where, params = _where(out.get("row_filters"))
        df = con.sql(f"select {cols} from {out['source']}{where} order by all", params=params).pl()
        counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
        if protocol.level == "aggregate" and (counts or derived):
            dc = protocol.disclosure
            df = disclosure.apply(df, counts, derived, dc["suppress_counts_from"], dc["suppress_counts_to"], dc["rounding_base"])
            df = df.select(disclosure.column_order(out["columns"], counts, derived))
        tables[out["table"]] = df
    return tables


def audit(folder: Path, protocol: Protocol) -> list[str]:
    """An independent reading of the built files against the protocol. Empty list: it may leave."""
    problems = []
    expected_files = {f"{protocol.id}.duckdb", "parquet", "manifest.json", "data_dictionary.md"}
    present = {p.name for p in folder.iterdir()}
    if present - expected_files:
        problems.append(f"unexpected files {sorted(present - expected_files)}")
    with duckdb.connect(str(folder / f"{protocol.id}.duckdb"), read_only=True) as con:
        db_tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    allowed_tables = {o["table"] for o in protocol.outputs}
    if db_tables != allowed_tables:
        problems.append(f"database tables {sorted(db_tables)} differ from the protocol's {sorted(allowed_tables)}")
    for out in protocol.outputs:
        pq = folder / "parquet" / f"{out['table']}.parquet"
        if not pq.exists():
            problems.append(f"{pq.name} missing")
            continue
        df = pl.read_parquet(pq)
        counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
        allowed = set(out["columns"])
        if protocol.level == "aggregate":
            allowed |= {f"{c}_{s}" for c in counts for s in ("suppressed", "rounding_base")}
            if derived:
                allowed.add("derived_withheld")
        if set(df.columns) != allowed:
            problems.append(f"{out['table']}: columns {sorted(set(df.columns) ^ allowed)} differ from the protocol")
            continue
        if protocol.level == "aggregate" and counts:
            dc = protocol.disclosure
            for c in counts:
                small = df.filter(pl.col(c).is_between(dc["suppress_counts_from"], dc["suppress_counts_to"])).height
                if small:
                    problems.append(f"{out['table']}.{c}: {small} cells between {dc['suppress_counts_from']} and {dc['suppress_counts_to']}")
                unrounded = df.filter(pl.col(c).is_not_null() & (pl.col(c) % dc["rounding_base"] != 0)).height
                if unrounded:
                    problems.append(f"{out['table']}.{c}: {unrounded} values not rounded to {dc['rounding_base']}")
            if derived:
                leaked = df.filter(pl.any_horizontal([pl.col(f"{c}_suppressed") for c in counts])
                                   & pl.any_horizontal([pl.col(d).is_not_null() for d in derived])).height
                if leaked:
                    problems.append(f"{out['table']}: {leaked} rows show rates derived from suppressed counts")
        for flt, values in (out.get("row_filters") or {}).items():
            if flt != "cells" and flt in df.columns:
                outside = df.filter(~pl.col(flt).is_in(values)).height
                if outside:
                    problems.append(f"{out['table']}: {outside} rows outside the row filter on {flt}")
    return problems


def _dictionary(protocol: Protocol, tables: dict[str, pl.DataFrame]) -> str:
    lines = [f"# {protocol.doc['title']}", "", f"Protocol `{protocol.id}` v{protocol.version} — level: {protocol.level}.", "",
             protocol.doc["purpose"].strip(), ""]
    if protocol.disclosure:
        dc = protocol.disclosure
        lines += [f"Disclosure control: counts from {dc['suppress_counts_from']} to {dc['suppress_counts_to']} are suppressed "
                  f"(value empty, `<count>_suppressed` true); other counts are rounded to the nearest {dc['rounding_base']} "
                  f"(`<count>_rounding_base`); rates and intervals of a row with a suppressed count are withheld "
                  f"(`derived_withheld` true).", ""]
    for out in protocol.outputs:
        df = tables[out["table"]]
        lines += [f"## {out['table']}", "", out.get("description", ""), "", "| column | type |", "|---|---|"]
        lines += [f"| {c} | {t} |" for c, t in df.schema.items()]
        lines.append("")
    return "\n".join(lines)


def _lineage(con: duckdb.DuckDBPyConnection, protocol: Protocol) -> list[dict]:
    agencies = protocol.doc["controllers"]
    rows = con.execute(
        f"""select contract_id, file_name, sha256 from ops.deliveries
            where status = 'accepted' and agency in ({", ".join("?" for _ in agencies)})
            order by contract_id, file_name""",
        agencies,
    ).fetchall()
    return [{"contract": c, "file": f, "sha256": s} for c, f, s in rows]


def _log(con: duckdb.DuckDBPyConnection, protocol: Protocol, release_date: date, status: str,
         path: Path | None, content: str | None, reason: str) -> None:
    con.execute(RELEASE_LOG_DDL)
    prev = con.execute("select entry_hash from ops.release_log order by seq desc limit 1").fetchall()
    prev_hash = prev[0][0] if prev else GENESIS
    seq = con.execute("select nextval('ops.release_log_seq')").fetchall()[0][0]
    logged_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    entry = {"seq": seq, "logged_at": logged_at.isoformat(), "protocol_id": protocol.id, "protocol_version": protocol.version,
             "release_date": release_date.isoformat(), "status": status, "path": str(path) if path else None,
             "content_sha256": content, "reason": reason, "prev_hash": prev_hash}
    entry_hash = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()
    con.execute("insert into ops.release_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, logged_at, protocol.id, protocol.version, release_date, status, entry["path"], content, reason,
                 prev_hash, entry_hash])


def _latest_content(con: duckdb.DuckDBPyConnection, protocol_id: str) -> str | None:
    con.execute(RELEASE_LOG_DDL)
    row = con.execute(
        """select content_sha256 from ops.release_log where protocol_id = ? and status in ('published', 'unchanged')
           order by seq desc limit 1""", [protocol_id]).fetchall()
    return row[0][0] if row else None


def release(warehouse: Path, releases_dir: Path, protocol: Protocol, release_date: date) -> ReleaseResult:
    """Build, audit and publish one protocol's release for `release_date`."""
    ok, why = protocol.in_force(release_date)
    if not ok:
        with connect(warehouse) as con:
            _log(con, protocol, release_date, "not_in_force", None, None, why)
        return ReleaseResult(protocol.id, "not_in_force", reason=why)

    with connect(warehouse, read_only=True) as con:
        tables = build_tables(con, protocol)
        lineage = _lineage(con, protocol)

    final = releases_dir / protocol.id / release_date.isoformat()
    tmp = final.with_name(f".building-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "parquet").mkdir(parents=True)
    try:
        with duckdb.connect(str(tmp / f"{protocol.id}.duckdb")) as out:
            for name, df in tables.items():
                out.register("_df", df)
                out.execute(f'create table "{name}" as select * from _df')
                out.unregister("_df")
        for name, df in tables.items():
            df.write_parquet(tmp / "parquet" / f"{name}.parquet", statistics=False)
        (tmp / "data_dictionary.md").write_text(_dictionary(protocol, tables))
        parquet_hashes = {f"parquet/{n}.parquet": _sha256(tmp / "parquet" / f"{n}.parquet") for n in sorted(tables)}
        content = hashlib.sha256(json.dumps(parquet_hashes, sort_keys=True).encode()).hexdigest()
        manifest = {
            "protocol": {"id": protocol.id, "version": protocol.version, "level": protocol.level,
                         "recipient": protocol.doc["recipient"]["name"]},
            "release_date": release_date.isoformat(),
            "content_sha256": content,
            "row_counts": {n: df.height for n, df in sorted(tables.items())},
            "files": {**parquet_hashes, f"{protocol.id}.duckdb": _sha256(tmp / f"{protocol.id}.duckdb"),
                      "data_dictionary.md": _sha256(tmp / "data_dictionary.md")},
            "lineage": {"deliveries": lineage},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

        problems = audit(tmp, protocol)
        if problems:
            raise ReleaseBlocked("; ".join(problems))

        with connect(warehouse) as con:
            if _latest_content(con, protocol.id) == content and final.exists():
                shutil.rmtree(tmp)
                _log(con, protocol, release_date, "unchanged", final, content, "same content as the latest release")
                return ReleaseResult(protocol.id, "unchanged", final, row_counts=manifest["row_counts"])
            if final.exists():  # a second release on the same day replaces the first, never half-way
                old = final.with_name(f".replaced-{final.name}-{os.getpid()}")
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old)
            else:
                os.replace(tmp, final)
            _log(con, protocol, release_date, "published", final, content, "")
        return ReleaseResult(protocol.id, "published", final, row_counts=manifest["row_counts"])
    except ReleaseBlocked as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        with connect(warehouse) as con:
            _log(con, protocol, release_date, "blocked", None, None, str(exc))
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
