"""Whether a release must be computed: its input fingerprint, and the current release's state.

One hash of everything a release is computed from (`input_fingerprint`); the protocol's
current release as logged (`current_release`) and whether its folder is still exactly as
published (`intact`); and `ops.release_inputs`, which records both for each logged release.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

import orchestration.partnership.releases.derived as derived
import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership.releases import ledger, signing
from orchestration.partnership.releases.audit.files import BOARD_PACK_FILES
from orchestration.partnership.releases.dictionary import dbt_descriptions, model_documentation
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.releases.scope import quote, scope_once, scoped_select
from orchestration.partnership.warehouse.connection import table_exists, tables_in
from orchestration.partnership.warehouse.files import sha256_file

# Bump when the release's output changes for a reason the sources below do not show.
RELEASE_LOGIC_VERSION = "1"
# The code whose behaviour decides a release folder's bytes and whether the audit lets it leave.
LOGIC_SOURCES = (
    "releases/scope.py", "releases/build.py", "releases/dictionary.py", "releases/fingerprint.py", "releases/log.py",
    "releases/publish.py", "releases/disclosure.py", "releases/protocols.py", "releases/signing.py",
    "releases/differencing.py",
    "releases/ledger.py", "releases/audit/holding.py", "releases/audit/attack.py", "releases/audit/relations.py",
    "releases/audit/solve.py", "releases/audit/relaxation.py", "releases/audit/nearby.py", "releases/audit/propagate.py", "releases/audit/verdicts.py", "releases/protection.py", "releases/structure.py", "releases/pooling.py",
    "releases/derived.py", "releases/audit/derived.py", "releases/facts.py", "releases/closing.py",
    "releases/audit/__init__.py", "releases/audit/zone.py", "releases/audit/files.py", "releases/audit/rows.py",
    "releases/audit/counts.py", "releases/audit/identifiers.py", "releases/audit/people.py",
    "releases/placement.py", "releases/audit/placement.py",
    "warehouse/pseudonymise.py", "warehouse/files.py", "boardpack/quality.py")
_logic_version: str | None = None


def logic_version() -> str:
    """The release logic's version: the constant above, the bytes of the modules that build and
    audit a release, and the versions of the libraries that write its files."""
    global _logic_version
    if _logic_version is None:
        h = hashlib.sha256(f"v{RELEASE_LOGIC_VERSION};duckdb {duckdb.__version__};polars {pl.__version__}".encode())
        for name in LOGIC_SOURCES:
            h.update(name.encode() + b"\0" + (Path(__file__).parents[1] / name).read_bytes())
        _logic_version = h.hexdigest()
    return _logic_version


def input_fingerprint(con: duckdb.DuckDBPyConnection, protocol: Protocol, key: bytes | None,
                      scoped: dict[str, str] | None = None) -> tuple[str, dict]:
    """One hash of everything a release is computed from, and its parts: the protocol (file and
    parsed), the release logic, the key's fingerprint and the recipient's pseudonym context, and
    for each output the rows it reads (a sha256 over the sorted md5 of each scoped row's JSON,
    in DuckDB, identifiers as stored, before pseudonymisation and disclosure control) and the
    dbt descriptions its data dictionary copies. `scoped`: as for `build_tables`."""
    if scoped is None:
        scoped = scope_once(con, protocol, key)
    path = Path(protocol.path) if getattr(protocol, "path", None) else None
    parts: dict[str, str] = {
        "logic": logic_version(),
        "protocol_file": sha256_file(path) if path is not None and path.is_file() else "missing",
        "protocol": hashlib.sha256(json.dumps(protocol.doc, sort_keys=True, default=str).encode()).hexdigest(),
    }
    if protocol.level == "aggregate":
        # derived figures are computed by the warehouse's statistics functions, from its bands mart
        parts["statistics_functions"] = derived.functions_fingerprint(con)
        parts["bands"] = _bands_digest(con, _indicators(con, protocol, key, scoped))
    if key is not None:
        parts["key_fingerprint"] = ps.fingerprint(key)
        parts["pseudonym_context"] = protocol.pseudonym_context
    cells = {o["table"]: ledger.key_columns(o) for o in ledger.controlled_outputs(protocol)}
    for out in protocol.outputs:
        if out["table"] in scoped:
            sql, named = f"select * from {scoped[out['table']]}", {}
        else:
            sql, named = scoped_select(con, protocol, out, key)
        # a controlled table's cells too: its rows without their counts and derived figures (`held_as_sent`)
        keys = cells.get(out["table"]) or ["_"]
        n, digest, shape = con.execute(
            f"""select count(*), coalesce(sha256(string_agg(h, '' order by h)), ''),
                       coalesce(sha256(string_agg(k, '' order by k)), '')
                from (select md5(cast(to_json(q) as varchar)) as h,
                             md5(cast(to_json(struct_pack({", ".join(f"{quote(c)} := q.{quote(c)}" for c in keys)}))
                                 as varchar)) as k
                      from (select *, null as "_" from ({sql})) q)""", named).fetchall()[0]
        parts[f"rows:{out['table']}"] = f"{n}:{digest}"
        if out["table"] in cells:
            parts[f"cells:{out['table']}"] = f"{n}:{shape}"
        parts[f"descriptions:{out['table']}"] = hashlib.sha256(
            json.dumps([dbt_descriptions(out["source"]), model_documentation(out["source"])], sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), parts


def _indicators(con: duckdb.DuckDBPyConnection, protocol: Protocol, key: bytes | None,
                scoped: dict[str, str]) -> list[str] | None:
    """The indicators whose rows the release's derived figures are computed for; None when an
    output with derived figures has no indicator column (then every band counts)."""
    found: set[str] = set()
    for out in protocol.outputs:
        if not out.get("derived_from_counts"):
            continue
        if "indicator_id" not in out["columns"]:
            return None
        sql, named = (f"select * from {scoped[out['table']]}", {}) if out["table"] in scoped \
            else scoped_select(con, protocol, out, key)
        found.update(r[0] for r in con.execute(f"select distinct indicator_id from ({sql}) q", named).fetchall())
    return sorted(i for i in found if i is not None)


def _bands_digest(con: duckdb.DuckDBPyConnection, indicators: list[str] | None) -> str:
    """The standardisation bands a release's rates are recomputed from (count and hash of the rows):
    those of its own indicators (`indicators`; None: all), since the rates join bands by indicator,
    so another board's new figures do not make this release's inputs change."""
    if not table_exists(con, *derived.BANDS_SOURCE.split(".")):
        return "missing"
    where, params = ("", []) if indicators is None else ("where list_contains(?, b.indicator_id)", [indicators])
    n, digest = con.execute(f"""select count(*), coalesce(sha256(string_agg(h, '' order by h)), '')
                                from (select md5(cast(to_json(b) as varchar)) as h from {derived.BANDS_SOURCE} b
                                      {where})""", params).fetchall()[0]
    return f"{n}:{digest}"


@dataclass
class Current:
    """The protocol's current release as logged: where, when, its content and input hashes, its files."""

    seq: int
    release_date: date
    path: Path
    content: str
    input_sha256: str
    files: dict[str, str]


def current_release(con: duckdb.DuckDBPyConnection, protocol_id: str, root: Path) -> Current | None:
    """The protocol's current release, when its latest log entry is a publication (or an unchanged
    night) with a recorded input fingerprint; None otherwise (blocked, not in force, failed, or
    logged before fingerprints were recorded): then the release is computed. A night that held
    the release back built nothing: the entry before it says what is current. Logged paths are
    relative to `root` (the data folder); an absolute one, logged before, is kept as it is."""
    if not {"release_log", "release_inputs"} <= tables_in(con, "ops"):
        return None
    row = con.execute("""select l.seq, l.status, l.path, l.content_sha256, i.input_sha256, i.files, i.path, i.published_on
                         from ops.release_log l left join ops.release_inputs i on i.seq = l.seq
                         where l.protocol_id = ? and l.status <> 'held_back' order by l.seq desc limit 1""",
                      [protocol_id]).fetchall()
    if not row:
        return None
    seq, status, path, content, input_sha, files, ipath, published_on = row[0]
    if status not in ("published", "unchanged") or input_sha is None or path != ipath or not path or not content:
        return None
    return Current(seq, published_on, Path(root) / path, content, input_sha, json.loads(files))


def changed_parts(con: duckdb.DuckDBPyConnection, seq: int, parts: dict) -> list[str]:
    """The fingerprint's parts that differ from those recorded for log entry `seq` (to say why a
    release was computed)."""
    recorded = _recorded(con, seq)
    return sorted(k for k in parts.keys() | recorded.keys() if parts.get(k) != recorded.get(k))


def _recorded(con: duckdb.DuckDBPyConnection, seq: int) -> dict:
    row = con.execute("select inputs from ops.release_inputs where seq = ?", [seq]).fetchall()
    return json.loads(row[0][0]) if row else {}


def held_as_sent(con: duckdb.DuckDBPyConnection, protocol: Protocol, cur: Current, parts: dict,
                 releases_dir: Path, release_date: date) -> str | None:
    """Why the release computed tonight would be the current one, or None.

    Every cell a recipient holds is sent again exactly as it was first sent (`differencing`; closing
    never hides one). So when tonight's inputs differ from those the current release was computed
    from only in the counts of its controlled tables, their cells (every other column) unchanged,
    and perhaps in the standardisation bands (which reach only new cells' rates), its folder is
    intact (`intact`), and every figure of it is the one the recipient's ledger holds for its
    cell, then tonight's release would send exactly the current release's figures."""
    controlled = ledger.controlled_outputs(protocol)
    if not controlled:
        return None
    recorded = _recorded(con, cur.seq)
    moved = {k for k in parts.keys() | recorded.keys() if parts.get(k) != recorded.get(k)}
    if not moved or not moved <= {f"rows:{o['table']}" for o in controlled} | {"bands"}:
        return None  # (a part recorded before cells were is missing there, so it moved: not held)
    if intact(cur, protocol, releases_dir, release_date) is not None:
        return None
    tables = {o["table"]: pl.read_parquet(cur.path / "parquet" / f"{o['table']}.parquet") for o in controlled}
    state = ["value", "suppressed", "rounding_base"]
    sent = ledger.figures(protocol, tables).select("table_name", "cell", "figure", *state)
    held = ledger.latest(con, protocol.recipient_id)
    if sent.height == 0 or held.height == 0:
        return None
    both = sent.join(held.select("table_name", "cell", "figure", *state).with_columns(pl.lit(True).alias("_held")),
                     on=["table_name", "cell", "figure"], how="left", suffix="_held")
    same = pl.col("_held").fill_null(False)
    for c in state:
        same = same & pl.col(c).eq_missing(pl.col(f"{c}_held"))
    if not both.select(same.all()).item():
        return None
    return (f"only counts behind figures {protocol.recipient_id} already holds changed ({', '.join(sorted(moved))}); "
            f"each is sent again as first sent, so the release of {cur.release_date.isoformat()} stays current")


def logged_path(folder: Path, root: Path) -> Path:
    """A release folder as the log records it: relative to `root` (the data folder), so a data
    folder moved or restored elsewhere still points at its own releases."""
    try:
        return Path(folder).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return Path(folder)  # releases kept outside the data folder: the absolute path


def changed_since_published(con: duckdb.DuckDBPyConnection, protocol_id: str, root: Path) -> tuple[Path, str] | None:
    """(folder, what changed) when the protocol's latest published folder still on disk no longer
    holds what was published, whatever the log says since (a night blocked by it included). The
    log's paths are relative to `root` (the data folder)."""
    if not {"release_log", "release_inputs"} <= tables_in(con, "ops"):
        return None
    row = con.execute("""select i.path, i.files from ops.release_log l join ops.release_inputs i on i.seq = l.seq
                         where l.protocol_id = ? and l.status in ('published', 'unchanged')
                         order by l.seq desc limit 1""", [protocol_id]).fetchall()
    folder = Path(root) / row[0][0] if row else None
    if folder is None or not folder.is_dir():
        return None  # none yet, or past its retention and removed
    problem = files_problem(folder, json.loads(row[0][1]))
    return (folder, problem) if problem else None


def intact(cur: Current, protocol: Protocol, releases_dir: Path, release_date: date) -> str | None:
    """None when the current release folder is exactly as published (every file's sha256, nothing
    added but the board pack) and still within its retention; else what is wrong."""
    folder = cur.path
    if folder.parent.resolve() != (Path(releases_dir) / protocol.id).resolve():
        return f"{folder} is not under {releases_dir}/{protocol.id}"
    if not folder.is_dir():
        return f"{folder} is missing"
    if (release_date - cur.release_date).days >= protocol.doc["retention"]["recipient_copy_days"]:
        return f"the release of {cur.release_date} is past its retention"
    problem = files_problem(folder, cur.files)
    if problem:
        return problem
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("content_sha256") != cur.content or manifest.get("files", {}).keys() - cur.files.keys():
        return "manifest.json does not describe the release logged"
    return None


def files_problem(folder: Path, files: dict[str, str]) -> str | None:
    """None when `folder` holds exactly `files` (relative path -> sha256), plus at most its board pack."""
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    missing = sorted(set(files) - present)
    if missing:
        return f"files missing from {folder.name}: {', '.join(missing)}"
    extra = sorted(present - set(files) - set(BOARD_PACK_FILES))
    if extra:
        return f"files not in the release in {folder.name}: {', '.join(extra)}"
    for name, digest in sorted(files.items()):
        if sha256_file(folder / name) != digest:
            return f"{name} in {folder.name} differs from the file published"
    return None


def folder_files(folder: Path) -> dict[str, str] | None:
    """The sha256 of a release folder's manifest and of every file it lists, when the files match
    the manifest; None when they do not (or there is no readable manifest)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        files = {**manifest["files"], "manifest.json": sha256_file(folder / "manifest.json")}
        if (folder / signing.SIGNATURE_FILE).is_file():
            files[signing.SIGNATURE_FILE] = sha256_file(folder / signing.SIGNATURE_FILE)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if files_problem(folder, files) else files


RELEASE_INPUTS_DDL = """
create table if not exists ops.release_inputs (
    seq bigint primary key,           -- the ops.release_log entry (published or unchanged) it belongs to
    protocol_id varchar not null,
    published_on date not null,       -- the release date of the folder at `path`
    path varchar not null,
    input_sha256 varchar not null,
    inputs json not null,             -- the fingerprint's parts, to see what changed
    files json not null               -- relative path -> sha256 of every file published (manifest.json included)
);
"""


def record_inputs(con: duckdb.DuckDBPyConnection, seq: int, protocol_id: str, published_on: date, path: Path,
                  fingerprint: str, parts: dict, files: dict[str, str]) -> None:
    """Record a logged release's input fingerprint (and its parts) and its published files."""
    con.execute(RELEASE_INPUTS_DDL)
    con.execute("insert into ops.release_inputs values (?, ?, ?, ?, ?, ?, ?)",
                [seq, protocol_id, published_on, str(path), fingerprint, json.dumps(parts, sort_keys=True),
                 json.dumps(files, sort_keys=True)])
