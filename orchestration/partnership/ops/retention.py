"""Retention: what is older than its contract's or protocol's retention period is purged.

- A delivery older than its contract's `retentionDays` (counted from its arrival, in whole days:
  purged when its age is *more* than the limit): its rows in `raw`, `quarantine`, `valid` and
  `identity` (and its records in the linkage tables), its archived file, its file in landing
  and its data-owner report, in one transaction for the rows, then the files. Its row in
  `ops.deliveries` stays, as the record that it was received, with `purged_at` set.
- A release folder older than its protocol's `retention.recipient_copy_days` (counted from its
  release date). `ops.release_log` is append-only and keeps its entries.
- Folders left by a release interrupted half-way (`.building-*`, `.replaced-*`): the writer lock
  is held, so no release is being built; they are removed.

Every purge is a row in `ops.retention_log`: what, how old, which limit, how many rows, which
files. No row values are logged.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import (
    connect,
    ensure_schemas,
    tables_in,
    writer_lock,
)

RETENTION_LOG_DDL = """
create sequence if not exists ops.retention_log_seq start 1;
create table if not exists ops.retention_log (
    seq bigint primary key,
    purged_at timestamp not null,
    kind varchar not null,              -- delivery | delivery_files | release | leftover
    subject varchar not null,           -- contract id, protocol id, or folder
    delivery_id bigint,
    file_name varchar,
    dated date,                         -- the arrival date or release date the age is counted from
    age_days integer,
    retention_days integer,
    rows_purged json,                   -- rows deleted per table
    files_removed json,                 -- paths removed
    detail varchar
);
alter table ops.deliveries add column if not exists purged_at timestamp;
"""
_ROW_SCHEMAS = ("raw", "quarantine", "valid", "identity")
_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LEFTOVER = re.compile(r"^\.(building|replaced)-")


@dataclass
class RetentionSummary:
    today: date
    dry_run: bool
    deliveries: list[dict] = field(default_factory=list)
    releases: list[dict] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    rows: int = 0
    files_removed: int = 0
    kept_without_limit: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verb = "would purge" if self.dry_run else "purged"
        out = [f"retention as of {self.today}: {verb} {len(self.deliveries)} deliveries ({self.rows} rows, "
               f"{self.files_removed} files) and {len(self.releases)} releases"]
        out += [f"  delivery {d['delivery_id']} {d['contract_id']}/{d['file_name']}: {d['age_days']} days old "
                f"> {d['retention_days']}" for d in self.deliveries]
        out += [f"  release {r['protocol_id']}/{r['release_date']}: {r['age_days']} days old > {r['retention_days']}"
                for r in self.releases]
        out += [f"  removed leftover of an interrupted release: {p}" for p in self.leftovers]
        out += [f"  no retention limit: {x}" for x in self.kept_without_limit]
        return out


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def _log(con, kind: str, subject: str, *, delivery_id=None, file_name=None, dated=None, age_days=None,
         retention_days=None, rows=None, files=None, detail=None) -> None:
    seq = con.execute("select nextval('ops.retention_log_seq')").fetchall()[0][0]
    con.execute("insert into ops.retention_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, _now(), kind, subject, delivery_id, file_name, dated, age_days, retention_days,
                 json.dumps(rows) if rows is not None else None, json.dumps(files) if files is not None else None, detail])



def _expired_deliveries(con, contracts: dict[str, Contract], today: date, summary: RetentionSummary,
                        marked: bool) -> list[dict]:
    cur = con.execute(f"""select delivery_id, contract_id, agency, file_name, landing_path, sha256, arrived_at, archive_path
                          from ops.deliveries where contract_id is not null {'and purged_at is null' if marked else ''}
                          order by arrived_at, delivery_id""")
    cols = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        d = dict(zip(cols, row))
        contract = contracts.get(d["contract_id"])
        limit = contract.retention_days if contract else None
        if limit is None:
            if d["contract_id"] not in summary.kept_without_limit:
                summary.kept_without_limit.append(d["contract_id"])
            continue
        age = (today - d["arrived_at"].date()).days
        if age > int(limit):
            out.append({**d, "age_days": age, "retention_days": int(limit)})
    return out


def _delivery_files(settings: Settings, d: dict, still_referenced: set[str]) -> list[Path]:
    """The files of a delivery: its archived copy (unless another kept delivery has the same bytes),
    its landing file (if it still holds the same bytes), its data-owner report."""
    from orchestration.partnership.ingest.reports import report_stem
    from orchestration.partnership.warehouse.files import sha256_file

    files = []
    if d["archive_path"] and d["archive_path"] not in still_referenced and Path(d["archive_path"]).is_file():
        files.append(Path(d["archive_path"]))
    landing = settings.landing_dir / d["landing_path"]
    if landing.is_file() and not landing.is_symlink() and sha256_file(landing) == d["sha256"]:
        files.append(landing)
    agency_reports = settings.reports_dir / "contracts" / (d["agency"] or "")
    if d["agency"] and agency_reports.is_dir():
        stem = report_stem(d["delivery_id"], d["file_name"])
        files += sorted(p for p in agency_reports.glob(f"{stem}.*") if p.is_file())
    return files


def _purge_rows(con, d: dict) -> dict[str, int]:
    rows = {}
    table = d["contract_id"]
    for schema in _ROW_SCHEMAS:
        if table in tables_in(con, schema):
            n = con.execute(f'delete from {schema}."{table}" where _delivery_id = ?', [d["delivery_id"]]).fetchall()[0][0]
            rows[f"{schema}.{table}"] = n
    # `identity.linkage_records` is a view of `identity.linkage_record_keys` (a warehouse linked
    # before the view has it as a table).
    base = set(con.execute("select schema_name, table_name from duckdb_tables() where database_name = current_database()").fetchall())
    for schema, name in (("linkage", "person_records"), ("identity", "linkage_record_keys"), ("identity", "linkage_records")):
        if (schema, name) in base:
            n = con.execute(f"delete from {schema}.{name} where contract_id = ? and delivery_id = ?",
                            [d["contract_id"], d["delivery_id"]]).fetchall()[0][0]
            rows[f"{schema}.{name}"] = n
    return rows


def _expired_releases(settings: Settings, protocols: dict[str, Protocol], today: date,
                      summary: RetentionSummary) -> list[dict]:
    out = []
    if not settings.releases_dir.is_dir():
        return out
    for pdir in sorted(p for p in settings.releases_dir.iterdir() if p.is_dir()):
        protocol = protocols.get(pdir.name)
        limit = ((protocol.doc.get("retention") or {}).get("recipient_copy_days")) if protocol else None
        for folder in sorted(p for p in pdir.iterdir() if p.is_dir() and _DATE_DIR.match(p.name)):
            if limit is None:
                if pdir.name not in summary.kept_without_limit:
                    summary.kept_without_limit.append(pdir.name)
                continue
            age = (today - date.fromisoformat(folder.name)).days
            if age > int(limit):
                out.append({"protocol_id": pdir.name, "release_date": folder.name, "path": folder,
                            "age_days": age, "retention_days": int(limit)})
    return out


def purge(settings: Settings, contracts: dict[str, Contract], protocols: dict[str, Protocol], today: date,
          dry_run: bool = False) -> RetentionSummary:
    """Purge everything past its retention as of `today`; log each purge in ops.retention_log."""
    summary = RetentionSummary(today, dry_run)
    if not settings.warehouse_path.exists():
        return summary
    with writer_lock(settings.warehouse_path, purpose="retention"):
        with connect(settings.warehouse_path, read_only=dry_run) as con:
            if not dry_run:
                ensure_schemas(con)
                con.execute(RETENTION_LOG_DDL)
            marked = _has_purged_at(con)
            expired = _expired_deliveries(con, contracts, today, summary, marked)
            going = {d["delivery_id"] for d in expired}
            kept_archives = {path for did, path, gone in con.execute(
                f"select delivery_id, archive_path, {'purged_at is not null' if marked else 'false'} from ops.deliveries "
                "where archive_path is not null").fetchall() if did not in going and not gone}
            for d in expired:
                files = _delivery_files(settings, d, kept_archives)
                if dry_run:
                    d["rows"] = {}
                    d["files"] = [str(f) for f in files]
                else:
                    con.execute("begin transaction")
                    try:
                        d["rows"] = _purge_rows(con, d)
                        con.execute("update ops.deliveries set purged_at = ? where delivery_id = ?", [_now(), d["delivery_id"]])
                        _log(con, "delivery", d["contract_id"], delivery_id=d["delivery_id"], file_name=d["file_name"],
                             dated=d["arrived_at"].date(), age_days=d["age_days"], retention_days=d["retention_days"],
                             rows=d["rows"], files=[str(f) for f in files])
                        con.execute("commit")
                    except BaseException:
                        con.execute("rollback")
                        raise
                    for f in files:  # after the commit: a crash here leaves files the next pass removes
                        f.unlink(missing_ok=True)
                    d["files"] = [str(f) for f in files]
                summary.rows += sum(v for k, v in d["rows"].items() if k.startswith("raw."))
                summary.files_removed += len(d["files"])
                summary.deliveries.append({k: v for k, v in d.items() if k not in ("sha256",)})
            if not dry_run:
                _remove_straggling_files(con, settings, kept_archives, summary)
            for r in _expired_releases(settings, protocols, today, summary):
                if not dry_run:
                    _log(con, "release", r["protocol_id"], dated=date.fromisoformat(r["release_date"]),
                         age_days=r["age_days"], retention_days=r["retention_days"], files=[str(r["path"])])
                    shutil.rmtree(r["path"])
                summary.releases.append({**r, "path": str(r["path"])})
            if not dry_run and settings.releases_dir.is_dir():
                for leftover in sorted(settings.releases_dir.glob("*/.*")):
                    if leftover.is_dir() and _LEFTOVER.match(leftover.name):
                        _log(con, "leftover", leftover.parent.name, files=[str(leftover)],
                             detail="folder of a release interrupted before it was published")
                        shutil.rmtree(leftover)
                        summary.leftovers.append(str(leftover))
    return summary


def _has_purged_at(con) -> bool:
    return "purged_at" in {r[0] for r in con.execute("describe ops.deliveries").fetchall()}


def _remove_straggling_files(con, settings: Settings, kept_archives: set[str], summary: RetentionSummary) -> None:
    """Files of deliveries purged earlier that are still there (a crash after the rows were purged)."""
    cur = con.execute("""select delivery_id, contract_id, agency, file_name, landing_path, sha256, archive_path
                         from ops.deliveries where purged_at is not null order by delivery_id""")
    cols = [d[0] for d in cur.description]
    for row in cur.fetchall():
        d = dict(zip(cols, row))
        files = _delivery_files(settings, d, kept_archives)
        if files:
            _log(con, "delivery_files", d["contract_id"], delivery_id=d["delivery_id"], file_name=d["file_name"],
                 files=[str(f) for f in files], detail="files left by an earlier, interrupted purge")
            for f in files:
                f.unlink(missing_ok=True)
            summary.files_removed += len(files)
