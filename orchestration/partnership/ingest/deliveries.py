"""Deliveries: register each landed file once, archive it unchanged, load and validate it.

Per delivery, in one transaction: its rows as delivered go to `raw`, rows that break the
contract to `quarantine` (with every rule broken), the rest, typed and with direct
identifiers pseudonymised, to `valid`; identifying values as delivered to `identity` (their
pseudonyms are `valid`'s, under the same `_delivery_id`, `_row_number`). Either all of it
lands with the delivery's final status, or none of it does and the delivery stays
`registered`, to be processed again by the next run.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl

import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.ops.testhooks import fail_point, pause_point
from orchestration.partnership.validation.engine import (
    Assessment,
    _reject,
    assess_rows,
    judge_batch,
)
from orchestration.partnership.validation.readers import ROW_NUMBER, DeliveryRejected
from orchestration.partnership.validation.rows import RULES
from orchestration.partnership.warehouse.files import sha256_file
from orchestration.partnership.warehouse.permissions import private_file

DELIVERY_ID = "_delivery_id"
_IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload")
_DUCK_TYPES = {"string": "varchar", "date": "date", "timestamp": "timestamp", "integer": "bigint", "number": "double", "boolean": "boolean"}


@dataclass(frozen=True)
class Landed:
    path: Path
    agency: str | None
    extract: str | None
    problem: tuple[str, str] | None  # (reason_code, reason) when it can't be a delivery


def _unsafe(name: str) -> bool:
    """Names a delivery may not have: control characters (a newline would forge log lines and mail
    headers), backslashes (a path separator elsewhere) and '..' (a parent folder, anywhere it is read)."""
    return any(not ch.isprintable() for ch in name) or "\\" in name or ".." in name


def _shown(part: str) -> str:
    """A name as it may appear in a message: control characters escaped."""
    return part if part.isprintable() else part.encode("unicode_escape").decode("ascii")


def scan_landing(landing: Path, contracts: dict[str, Contract]) -> list[Landed]:
    """Every file in the landing area, with what it claims to be and whether it can be one."""
    found: list[Landed] = []
    if not landing.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(landing, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        linked = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]  # never descended: reported, not skipped
        dirnames[:] = [d for d in dirnames if d not in linked]
        for name in sorted(filenames + linked):
            if name.startswith(".") or name.endswith(_IGNORED_SUFFIXES):
                continue  # hidden or still being written
            path = Path(dirpath) / name
            rel = path.relative_to(landing).parts
            shown = "/".join(_shown(p) for p in rel)
            agency, extract = (rel[0], rel[1]) if len(rel) == 3 else (None, None)
            problem = None
            if path.is_symlink():
                problem = ("symlink", f"{shown}: a symbolic link, not a delivered file; links are never followed")
            elif not stat.S_ISREG(path.lstat().st_mode):
                problem = ("not_a_file", f"{shown}: not a regular file (a pipe, socket or device); nothing was read")
            elif _unsafe(name):
                problem = ("file_name", f"{shown}: the file name holds control characters, a backslash or '..'; "
                                        "rename it (letters, digits, '_', '-', '.', spaces) and send it again")
            elif len(rel) != 3:
                problem = ("location", f"{shown}: deliveries go in landing/<agency>/<extract>/<file>")
            elif f"{agency}__{extract}" not in contracts:
                problem = ("unknown_extract", f"{shown}: no contract for agency {_shown(agency)!r}, extract {_shown(extract)!r}")
            elif not fnmatch.fnmatch(name, contracts[f"{agency}__{extract}"].delivery.file_pattern):
                pattern = contracts[f"{agency}__{extract}"].delivery.file_pattern
                problem = ("file_name", f"{shown}: file name does not match the contract's pattern {pattern!r}")
            found.append(Landed(path, agency, extract, problem))
    return found


def register(con: duckdb.DuckDBPyConnection, landing: Path, contracts: dict[str, Contract], now: datetime) -> list[int]:
    """Record each file not seen before (by path and content hash). Returns the new delivery ids.

    A file's hash is read from `ops.landing_hashes` when its path, size, modification time, inode
    and change time are those it had when it was last hashed; any difference hashes it again
    (docs/operations.md: what this trusts)."""
    con.execute("""create table if not exists ops.landing_hashes (
        landing_path varchar primary key, size_bytes bigint not null, mtime_ns bigint not null,
        inode bigint not null, ctime_ns bigint not null, sha256 varchar not null, hashed_at timestamp not null)""")
    known = {r[0]: r[1:] for r in con.execute(
        "select landing_path, size_bytes, mtime_ns, inode, ctime_ns, sha256 from ops.landing_hashes").fetchall()}
    new_ids = []
    landed = scan_landing(landing, contracts)
    for item in landed:
        rel = str(item.path.relative_to(landing))
        st = item.path.lstat()
        unread = item.problem is not None and item.problem[0] in ("symlink", "not_a_file")
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        if unread:
            digest = ""  # a link is never followed, a pipe never read
        elif rel in known and known[rel][:4] == stamp:
            digest = known[rel][4]
        else:
            digest = sha256_file(item.path)
            after = item.path.lstat()
            if (after.st_size, after.st_mtime_ns, after.st_ino, after.st_ctime_ns) == stamp:  # not written meanwhile
                con.execute("insert or replace into ops.landing_hashes values (?, ?, ?, ?, ?, ?, ?)", [rel, *stamp, digest, now])
        seen = con.execute(
            "select count(*) from ops.deliveries where landing_path = ? and sha256 = ?", [rel, digest]
        ).fetchall()[0][0]
        if seen:
            continue
        contract_id = f"{item.agency}__{item.extract}" if item.agency else None
        did = con.execute("select nextval('ops.delivery_id_seq')").fetchall()[0][0]
        status, code, reason = ("rejected", *item.problem) if item.problem else ("registered", None, None)
        con.execute(
            """insert into ops.deliveries (delivery_id, contract_id, agency, extract, file_name, landing_path, sha256,
                   size_bytes, arrived_at, registered_at, status, reason_code, reason, processed_at)
               values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [did, contract_id if not item.problem or item.problem[0] not in ("unknown_extract", "location") else None,
             item.agency, item.extract, item.path.name, rel, digest, st.st_size,
             datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).replace(tzinfo=None), now, status, code, reason,
             now if item.problem else None],
        )
        new_ids.append(did)
    gone = sorted(set(known) - {str(i.path.relative_to(landing)) for i in landed})
    if gone:  # files no longer in landing (purged, moved): their hashes are not kept
        con.execute("delete from ops.landing_hashes where list_contains(?, landing_path)", [gone])
    return new_ids


def archive(path: Path, archive_dir: Path, contract: Contract, digest: str) -> Path:
    """Keep the delivered bytes, unchanged, by hash. Written aside then renamed: never half a file."""
    dest = archive_dir / contract.agency / contract.extract / f"{digest}{''.join(path.suffixes[-1:])}"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copyfile(path, tmp)
        private_file(tmp)  # the archive is the warehouse's alone, whatever modes the file was delivered with
        if sha256_file(tmp) != digest:
            tmp.unlink()
            raise DeliveryRejected("changed", f"{path.name}: the file changed while it was being archived; it will be retried")
        os.replace(tmp, dest)
    return dest


def _ensure_tables(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    t = contract.table
    text_cols = ", ".join(f'"{c.name}" varchar' for c in contract.columns)
    con.execute(f'create table if not exists raw."{t}" ({DELIVERY_ID} bigint, {ROW_NUMBER} bigint, {text_cols})')
    con.execute(f'create table if not exists quarantine."{t}" ({DELIVERY_ID} bigint, {ROW_NUMBER} bigint, {RULES} varchar[], {text_cols})')
    typed = []
    for c in contract.columns:
        if c.classification == "direct_identifier":
            typed.append(f'"{c.name}_pseudo" varchar')
        else:
            typed.append(f'"{c.name}" {_DUCK_TYPES[c.logical_type]}')
    con.execute(f'create table if not exists valid."{t}" ({DELIVERY_ID} bigint, {ROW_NUMBER} bigint, {", ".join(typed)})')
    direct = [c.name for c in contract.columns if c.classification == "direct_identifier"]
    if direct:
        idcols = ", ".join(f'"{c}" varchar' for c in direct)
        con.execute(f'create table if not exists identity."{t}" ({DELIVERY_ID} bigint, {ROW_NUMBER} bigint, {idcols})')
        _drop_identity_pseudonyms(con, t, direct)


def _drop_identity_pseudonyms(con: duckdb.DuckDBPyConnection, table: str, direct: list[str]) -> None:
    """An `identity` table written before it stopped keeping each identifier's pseudonym beside it
    loses those `<column>_pseudo` columns, once: the pseudonym is `valid`'s, under the same key."""
    held = {c for (c,) in con.execute("""select column_name from duckdb_columns() where database_name = current_database()
                                         and schema_name = 'identity' and table_name = ?""", [table]).fetchall()}
    for column in [f"{c}_pseudo" for c in direct if f"{c}_pseudo" in held and f"{c}_pseudo" not in direct]:
        con.execute(f'alter table identity."{table}" drop column "{column}"')


def _arrow(frame: pl.DataFrame):
    """A frame as DuckDB reads it: Arrow with string views, polars' own strings, not copied (its
    default export copies every string into a large_string column first)."""
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())


def _pseudonyms(con, contract: Contract, valid: pl.DataFrame, pads: tuple[bytes, bytes]) -> pl.DataFrame:
    """`valid` with a `<column>_pseudo` beside each direct identifier: `valid` takes the pseudonym,
    `identity` the value.

    The HMAC is computed in DuckDB once per distinct value of a column, not once per row: a
    delivery repeats its people (a name is shared by thousands of rows, a patient attends
    again), and the keyed hashing was the costliest part of a load. Each row then takes its
    value's pseudonym by an exact match on the value as delivered (its normalisation is part
    of the hashed expression), so a row gets what hashing it alone would give."""
    direct = [c.name for c in contract.columns if c.classification == "direct_identifier"]
    if not direct or not valid.height:
        return valid.with_columns(pl.lit(None, pl.Utf8).alias(f"{c}_pseudo") for c in direct)
    pseudo = []
    for name in direct:
        norm = ps.normalise_sql("value", ps.identifier_kind(name))
        values = valid.select(pl.col(name).alias("value")).drop_nulls().unique()
        con.register("_values", _arrow(values))
        try:
            hashed = con.sql(f"select value, case when {norm} is null then null else {ps.hmac_sql(norm)} end as pseudo from _values",
                             params={"ipad": pads[0], "opad": pads[1]}).pl()
        finally:
            con.unregister("_values")
        # each value looked up in the distinct values' mapping (a join would build a frame per column)
        pseudo.append(valid.get_column(name).replace_strict(hashed.get_column("value"), hashed.get_column("pseudo"),
                                                            default=None, return_dtype=pl.Utf8).alias(f"{name}_pseudo"))
    return valid.hstack(pseudo)


def _write_rows(con, contract: Contract, delivery_id: int, text: pl.DataFrame, valid: pl.DataFrame,
                quarantine: pl.DataFrame, pads: tuple[bytes, bytes]) -> None:
    t = contract.table
    cols = ", ".join(f'"{c}"' for c in contract.column_names)
    params = {"d": delivery_id}
    con.register("_text", _arrow(text))
    con.execute(f'insert into raw."{t}" select $d, {ROW_NUMBER}, {cols} from _text', params)
    con.register("_quarantine", _arrow(quarantine))
    con.execute(f'insert into quarantine."{t}" select $d, {ROW_NUMBER}, {RULES}, {cols} from _quarantine', params)
    direct = [c.name for c in contract.columns if c.classification == "direct_identifier"]
    con.register("_valid", _arrow(_pseudonyms(con, contract, valid, pads)))
    select = [f'"{c.name}_pseudo"' if c.name in direct else f'"{c.name}"' for c in contract.columns]
    con.execute(f'insert into valid."{t}" select $d, {ROW_NUMBER}, {", ".join(select)} from _valid', params)
    if direct:
        values = ", ".join(f'"{c}"' for c in direct)
        con.execute(f'insert into identity."{t}" select $d, {ROW_NUMBER}, {values} from _valid', params)
    for view in ("_text", "_quarantine", "_valid"):
        con.unregister(view)


def _finish(con, delivery_id: int, **fields) -> None:
    sets = ", ".join(f"{k} = ?" for k in fields)
    con.execute(f"update ops.deliveries set {sets} where delivery_id = ?", [*fields.values(), delivery_id])


def process_delivery(con: duckdb.DuckDBPyConnection, landing: Path, archive_dir: Path, contract: Contract,
                     delivery: dict, pads: tuple[bytes, bytes], now: datetime, docs_dir: Path | None = None,
                     suite_started: Callable[[], object] | None = None,
                     seconds: dict[str, float] | None = None) -> Assessment:
    """Validate and load one registered delivery, atomically. Returns the engine's assessment of it.

    The rows are written while the batch suite runs (in the GX worker, on the other core); its
    verdict is awaited before the commit. A batch rule of error severity rolls the rows back and
    records the rejection alone. `suite_started` is called once the suite is under way. Wall time
    per phase is added to `seconds` (archive, validate, write, batch suite wait, commit)."""
    clock = PhaseClock(seconds)
    did = delivery["delivery_id"]
    path = landing / delivery["landing_path"]
    archived: Path | None = None
    con.execute("begin transaction")
    try:
        dup = con.execute(
            """select min(delivery_id) from ops.deliveries where contract_id = ? and sha256 = ?
               and delivery_id <> ? and status = 'accepted'""",
            [contract.id, delivery["sha256"], did],
        ).fetchall()[0][0]
        batch = None
        try:
            if not path.exists():
                raise DeliveryRejected("missing", f"{delivery['file_name']}: the file was removed from landing before it could be read")
            archived = archive(path, archive_dir, contract, delivery["sha256"])
            clock.lap("archive")
        except DeliveryRejected as rej:
            result = Assessment(contract.id, contract.version, contract.agency, delivery["file_name"], delivery["sha256"],
                                delivery["arrived_at"], None)
            _reject(result, rej.code, rej.message)
        else:
            result, batch = assess_rows(archived, contract, file_name=delivery["file_name"], sha256=delivery["sha256"],
                                        arrived_at=delivery["arrived_at"], duplicate_of=dup, docs_dir=docs_dir,
                                        label=f"delivery {did}: {delivery['file_name']}")
            clock.lap("validate")
        if batch is not None:
            if suite_started is not None:
                suite_started()
            rows = result.rows
            _ensure_tables(con, contract)
            _write_rows(con, contract, did, result.text, rows.valid, rows.quarantine, pads)
            clock.lap("write")
            judge_batch(result, batch, contract)
            clock.lap("batch suite wait")
            if not result.accepted:  # a batch rule rejects the delivery: none of its rows stay
                con.execute("rollback")
                con.execute("begin transaction")
        if not result.accepted:
            _finish(con, did, status="rejected", reason_code=result.reason_code, reason=result.reason,
                    contract_version=contract.version, processed_at=now, warnings=json.dumps(result.warnings),
                    archive_path=str(archived) if archived else None)
            con.execute("commit")
            return result
        rows = result.rows
        assert rows.rows_read == result.rows_read, "conservation: rows read must equal valid + quarantined"
        _finish(con, did, status="accepted", contract_version=contract.version, rows_read=result.rows_read,
                rows_valid=result.rows_valid, rows_quarantined=result.rows_quarantined,
                rule_counts=json.dumps(result.rule_counts), warnings=json.dumps(result.warnings),
                archive_path=str(archived), processed_at=now)
        pause_point("ingest:before_commit")  # crash tests only; inert otherwise
        fail_point(f"ingest:{contract.id}")  # isolation tests only; inert otherwise
        con.execute("commit")
        clock.lap("commit")
        return result
    except BaseException:
        con.execute("rollback")
        raise


class PhaseClock:
    """Adds the wall time since its last lap to a phase of `seconds` (nothing when it is None)."""

    def __init__(self, seconds: dict[str, float] | None) -> None:
        self.seconds, self.last = seconds, time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        if self.seconds is not None:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self.last
        self.last = now


def pending(con: duckdb.DuckDBPyConnection, contract_id: str) -> list[dict]:
    cur = con.execute(
        """select delivery_id, file_name, landing_path, sha256, arrived_at from ops.deliveries
           where contract_id = ? and status = 'registered' order by arrived_at, file_name, delivery_id""",
        [contract_id],
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]
