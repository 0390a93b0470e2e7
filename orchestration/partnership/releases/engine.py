"""The release engine: for each protocol in force, a physically separate output.

Built in a temporary folder beside its destination, audited there against the protocol
file (fail closed), then moved into place with one rename, and recorded in the
hash-chained `ops.release_log`. A recipient's files hold only what its protocol allows.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl

import orchestration.partnership.boardpack.quality as data_quality
import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership.ops.testhooks import pause_point
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.warehouse.connection import (
    connect,
    table_exists,
    tables_in,
)

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
BOARD_PACK_FILES = ("board_pack.html", "board_pack.pdf")  # written into the folder after publication


class ReleaseBlocked(RuntimeError):
    """The audit found the built output breaks its protocol. Nothing was published."""


class SourceMissing(ReleaseBlocked):
    """A table the protocol reads from is not in the warehouse (not built yet). Nothing was published."""


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


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _where(out: dict) -> tuple[list[str], list]:
    """SQL conditions (on alias `s`) for the output's row filters, consent and opt-out rules."""
    clauses, params = [], []
    for key, allowed in (out.get("row_filters") or {}).items():
        if key == "cells":
            ors = []
            for cell in allowed:
                ors.append("(" + " and ".join(f"s.{_q(k)} = ?" for k in cell) + ")")
                params += list(cell.values())
            clauses.append("(" + " or ".join(ors) + ")")
        elif key == "geography":
            col, within = f"s.{_q(allowed['column'])}", list(allowed["within"])
            marks = ", ".join("?" for _ in within)
            if allowed["level"] == "district":
                clauses.append(f"{col} in ({marks})")
                params += within
            elif allowed["level"] == "ward":
                clauses.append(f"{col} in (select ward_code from reference.geography_wards "
                               f"where district_code in ({marks}) or ward_code in ({marks}))")
                params += within * 2
            else:
                clauses.append(f"{col} in (select l.lsoa_code from reference.geography_lsoas l "
                               f"join reference.geography_wards w on l.ward_code = w.ward_code "
                               f"where w.district_code in ({marks}) or w.ward_code in ({marks}) or l.lsoa_code in ({marks}))")
                params += within * 3
        elif key == "age":
            clauses.append(f"s.{_q(allowed['column'])} in (" + ", ".join("?" for _ in allowed["values"]) + ")")
            params += list(allowed["values"])
        elif key == "cohort":
            clauses.append(f"s.{_q(allowed['column'])} = ?")
            params.append(allowed.get("equals", True))
        else:
            clauses.append(f"s.{_q(key)} in (" + ", ".join("?" for _ in allowed) + ")")
            params += list(allowed)
    for rule in out.get("consent") or []:
        agencies = rule["agencies"]
        clauses.append(f"(s.{_q(rule.get('agency_column', 'agency'))} not in ({', '.join('?' for _ in agencies)}) "
                       f"or s.{_q(rule['column'])} is true)")
        params += agencies
    oo = out.get("opt_out")
    if oo:
        person = f"s.{_q(oo['person_column'])}"
        agencies = oo["health_derived_agencies"]
        health = [f"s.{_q(oo.get('agency_column', 'agency'))} in ({', '.join('?' for _ in agencies)})"]
        params += agencies
        if oo.get("health_derived_column"):
            health.append(f"coalesce(s.{_q(oo['health_derived_column'])}, true)")
        scope = "true" if oo.get("applies_to_all_rows") else "(" + " or ".join(health) + ")"
        # An unknown person might be opted out: their health-derived rows do not leave either.
        clauses.append(f"not ({scope} and ({person} is null or exists "
                       f"(select 1 from linkage.persons p where p.person_id = {person} and p.opted_out)))")
    return clauses, params


_GENERALISE_SQL = {"month": "cast(date_trunc('month', {c}) as date)", "quarter": "cast(date_trunc('quarter', {c}) as date)"}


def _identity_sql(con: duckdb.DuckDBPyConnection, ids: dict, persons: str) -> str:
    """The latest identity of each person of `persons` (SQL selecting person ids), from the listed
    sources only (identity schema, else valid). Only those persons' records are read and ranked:
    the release names a cohort, not the county (county: 18,000 of 274,000 people)."""
    parts = []
    for src in ids["sources"]:
        c = src["contract"]
        if not (table_exists(con, "valid", c) and table_exists(con, "identity", c)):
            continue  # nothing delivered from it yet: no identity is taken from it
        id_cols = {r[0] for r in con.execute("select column_name from information_schema.columns "
                                              "where table_schema = 'identity' and table_name = ?", [c]).fetchall()}
        valid_cols = {r[0] for r in con.execute("select column_name from information_schema.columns "
                                                 "where table_schema = 'valid' and table_name = ?", [c]).fetchall()}
        fields = []
        for field in sorted(set(ids["columns"].values())):
            if field in id_cols:
                fields.append(f"cast(i.{_q(field)} as varchar) as {_q(field)}")
            elif field in valid_cols:
                fields.append(f"cast(v.{_q(field)} as varchar) as {_q(field)}")
            else:
                fields.append(f"cast(null as varchar) as {_q(field)}")
        parts.append(f"""select r.person_id, r.delivery_id, r.row_number, '{c}' as contract_id, {", ".join(fields)}
            from linkage.person_records r
            join identity.{_q(c)} i on i._delivery_id = r.delivery_id and i._row_number = r.row_number
            join valid.{_q(c)} v on v._delivery_id = r.delivery_id and v._row_number = r.row_number
            where r.contract_id = '{c}' and r.person_id in ({persons})""")
    if not parts:
        raise SourceMissing("none of the protocol's identity sources is in the warehouse")
    return f"""select * exclude (rn) from (
        select *, row_number() over (partition by person_id order by delivery_id desc, row_number desc, contract_id) as rn
        from ({" union all ".join(parts)})) where rn = 1"""


def _scoped_select(con: duckdb.DuckDBPyConnection, protocol: Protocol, out: dict, key: bytes | None) -> tuple[str, dict]:
    """The SQL (and its named parameters) of one output's rows before disclosure control: allowed
    rows and columns, generalised, identified only as the protocol names, unordered. Pseudonym
    columns hold the value they are made from: pseudonyms are made in one place, `_from_scoped`
    (the key enters the fingerprint on its own)."""
    if not table_exists(con, *out["source"].split(".", 1)):
        raise SourceMissing(f"{out['source']} is not in the warehouse (not built yet)")
    pseudonyms = out.get("pseudonyms") or {}
    ids = out.get("identifiers")
    id_cols = (ids or {}).get("columns", {})
    if (pseudonyms or ids) and key is None:
        raise ReleaseBlocked(f"{protocol.id}: person-level release without a pseudonymisation key")
    if out.get("opt_out") and not table_exists(con, "linkage", "persons"):
        raise SourceMissing("linkage.persons (the opt-out status of each person) is not in the warehouse")
    gen = out.get("generalisation") or {}
    select = []
    for c in out["columns"]:
        if c in pseudonyms:
            select.append(f"cast(s.{_q(pseudonyms[c])} as varchar) as {_q(c)}")
        elif c in id_cols:
            select.append(f"ident.{_q(id_cols[c])} as {_q(c)}")
        elif gen.get(c) in _GENERALISE_SQL:
            select.append(_GENERALISE_SQL[gen[c]].format(c=f"s.{_q(c)}") + f" as {_q(c)}")
        else:
            select.append(f"s.{_q(c)}")
    clauses, wparams = _where(out)
    # named parameters throughout (the pads `_from_scoped` binds are named too)
    named = {}
    sql_clauses = []
    k = 0
    for clause in clauses:
        while "?" in clause:
            clause = clause.replace("?", f"$p{k}", 1)
            k += 1
        sql_clauses.append(clause)
    named.update({f"p{i}": v for i, v in enumerate(wparams)})
    where = (" where " + " and ".join(sql_clauses)) if sql_clauses else ""
    join = ""
    if ids:
        person = _q(ids["person_column"])
        # identities of the persons of the allowed rows only (the same filters, the same parameters)
        persons = f"select s.{person} from {out['source']} s{where}"
        join = f" left join ({_identity_sql(con, ids, persons)}) ident on ident.person_id = s.{person}"
    return f"select {', '.join(select)} from {out['source']} s{join}{where}", named


def _person_level(out: dict) -> bool:
    return bool(out.get("pseudonyms") or out.get("identifiers"))


def scope_once(con: duckdb.DuckDBPyConnection, protocol: Protocol, key: bytes | None) -> dict[str, str]:
    """The scoped rows of each person-level output (`_scoped_select`: pseudonym columns hold the
    ids they are made from), read once into a temporary table of this connection (in memory, gone
    when it closes), which the fingerprint and the build then both read: the identity join and
    row filters run once instead of twice. Output table -> temporary table."""
    scoped = {}
    for i, out in enumerate(protocol.outputs):
        if _person_level(out):
            sql, named = _scoped_select(con, protocol, out, key)
            con.execute(f"create or replace temp table _scoped_{i} as {sql}", named)
            scoped[out["table"]] = f"temp.main._scoped_{i}"
    return scoped


def _from_scoped(protocol: Protocol, out: dict, key: bytes, scoped: str) -> tuple[str, dict]:
    """A person-level output's rows from its scoped rows: pseudonyms made (HMAC-SHA256 keyed per
    recipient, the only place a release's pseudonyms are made), ordered."""
    pseudonyms = out.get("pseudonyms") or {}
    ipad, opad = ps.hmac_pads(key, protocol.pseudonym_context)
    select = [f"case when t.{_q(c)} is null then null else {ps.hmac_sql(f't.{_q(c)}')} end as {_q(c)}"
              if c in pseudonyms else f"t.{_q(c)}" for c in out["columns"]]
    return f"select {', '.join(select)} from {scoped} t order by all", ({"ipad": ipad, "opad": opad} if pseudonyms else {})


def build_tables(con: duckdb.DuckDBPyConnection, protocol: Protocol, key: bytes | None = None,
                 scoped: dict[str, str] | None = None) -> dict[str, pl.DataFrame]:
    """The protocol's outputs, read from the warehouse: allowed rows and columns only, generalised,
    pseudonymised per recipient, identified only as the protocol names, disclosure-controlled.
    `scoped`: person-level outputs' rows already read by `scope_once` on this connection (read
    here when not given)."""
    if scoped is None:
        scoped = scope_once(con, protocol, key)
    tables = {}
    for out in protocol.outputs:
        if out["table"] in scoped:
            sql, named = _from_scoped(protocol, out, key, scoped[out["table"]])
        else:
            sql, named = _scoped_select(con, protocol, out, key)
            sql += " order by all"
        df = con.sql(sql, params=named).pl()
        counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
        if protocol.level == "aggregate" and (counts or derived):
            dc = protocol.disclosure
            df = disclosure.apply(df, counts, derived, dc["suppress_counts_from"], dc["suppress_counts_to"],
                                  dc["rounding_base"], protocol.margins)
            df = df.select(disclosure.column_order(out["columns"], counts, derived))
        tables[out["table"]] = df
    return tables


# ---------------------------------------------------------------- input fingerprints

# Bump when the release's output changes for a reason the sources below do not show.
RELEASE_LOGIC_VERSION = "1"
# The code whose behaviour decides a release folder's bytes and whether the audit lets it leave.
_LOGIC_SOURCES = ("releases/engine.py", "releases/disclosure.py", "releases/audit.py", "warehouse/pseudonymise.py",
                  "releases/protocols.py", "boardpack/quality.py")
_logic_version: str | None = None


def logic_version() -> str:
    """The release logic's version: the constant above, the bytes of the modules that build and
    audit a release, and the versions of the libraries that write its files."""
    global _logic_version
    if _logic_version is None:
        h = hashlib.sha256(f"v{RELEASE_LOGIC_VERSION};duckdb {duckdb.__version__};polars {pl.__version__}".encode())
        for name in _LOGIC_SOURCES:
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
        "protocol_file": _sha256(path) if path is not None and path.is_file() else "missing",
        "protocol": hashlib.sha256(json.dumps(protocol.doc, sort_keys=True, default=str).encode()).hexdigest(),
    }
    if key is not None:
        parts["key_fingerprint"] = ps.fingerprint(key)
        parts["pseudonym_context"] = protocol.pseudonym_context
    for out in protocol.outputs:
        if out["table"] in scoped:
            sql, named = f"select * from {scoped[out['table']]}", {}
        else:
            sql, named = _scoped_select(con, protocol, out, key)
        n, digest = con.execute(
            f"""select count(*), coalesce(sha256(string_agg(h, '' order by h)), '')
                from (select md5(cast(to_json(q) as varchar)) as h from ({sql}) q)""", named).fetchall()[0]
        parts[f"rows:{out['table']}"] = f"{n}:{digest}"
        parts[f"descriptions:{out['table']}"] = hashlib.sha256(
            json.dumps(_dbt_descriptions(out["source"]), sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), parts


@dataclass
class _Current:
    seq: int
    release_date: date
    path: Path
    content: str
    input_sha256: str
    files: dict[str, str]


def _current(con: duckdb.DuckDBPyConnection, protocol_id: str) -> _Current | None:
    """The protocol's current release, when its latest log entry is a publication (or an unchanged
    night) with a recorded input fingerprint; None otherwise (blocked, not in force, or logged
    before fingerprints were recorded): then the release is computed."""
    if not {"release_log", "release_inputs"} <= tables_in(con, "ops"):
        return None
    row = con.execute("""select l.seq, l.status, l.path, l.content_sha256, i.input_sha256, i.files, i.path, i.published_on
                         from ops.release_log l left join ops.release_inputs i on i.seq = l.seq
                         where l.protocol_id = ? order by l.seq desc limit 1""", [protocol_id]).fetchall()
    if not row:
        return None
    seq, status, path, content, input_sha, files, ipath, published_on = row[0]
    if status not in ("published", "unchanged") or input_sha is None or path != ipath or not path or not content:
        return None
    return _Current(seq, published_on, Path(path), content, input_sha, json.loads(files))


def _intact(cur: _Current, protocol: Protocol, releases_dir: Path, release_date: date) -> str | None:
    """None when the current release folder is exactly as published (every file's sha256, nothing
    added but the board pack) and still within its retention; else what is wrong."""
    folder = cur.path
    if folder.parent.resolve() != (Path(releases_dir) / protocol.id).resolve():
        return f"{folder} is not under {releases_dir}/{protocol.id}"
    if not folder.is_dir():
        return f"{folder} is missing"
    if (release_date - cur.release_date).days >= protocol.doc["retention"]["recipient_copy_days"]:
        return f"the release of {cur.release_date} is past its retention"
    problem = _files_problem(folder, cur.files)
    if problem:
        return problem
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("content_sha256") != cur.content or manifest.get("files", {}).keys() - cur.files.keys():
        return "manifest.json does not describe the release logged"
    return None


def _files_problem(folder: Path, files: dict[str, str]) -> str | None:
    """None when `folder` holds exactly `files` (relative path -> sha256), plus at most its board pack."""
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    missing = sorted(set(files) - present)
    if missing:
        return f"files missing from {folder.name}: {', '.join(missing)}"
    extra = sorted(present - set(files) - set(BOARD_PACK_FILES))
    if extra:
        return f"files not in the release in {folder.name}: {', '.join(extra)}"
    for name, digest in sorted(files.items()):
        if _sha256(folder / name) != digest:
            return f"{name} in {folder.name} differs from the file published"
    return None


def _folder_files(folder: Path) -> dict[str, str] | None:
    """The sha256 of a release folder's manifest and of every file it lists, when the files match
    the manifest; None when they do not (or there is no readable manifest)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        files = {**manifest["files"], "manifest.json": _sha256(folder / "manifest.json")}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if _files_problem(folder, files) else files


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


def _record_inputs(con: duckdb.DuckDBPyConnection, seq: int, protocol_id: str, published_on: date, path: Path,
                   fingerprint: str, parts: dict, files: dict[str, str]) -> None:
    con.execute(RELEASE_INPUTS_DDL)
    con.execute("insert into ops.release_inputs values (?, ?, ?, ?, ?, ?, ?)",
                [seq, protocol_id, published_on, str(path), fingerprint, json.dumps(parts, sort_keys=True),
                 json.dumps(files, sort_keys=True)])


def audit(folder: Path, protocol: Protocol, warehouse: Path | None = None, releases_dir: Path | None = None,
          key: bytes | None = None) -> list[str]:
    """The independent check of a built folder (orchestration/partnership/releases/audit.py). Empty list: it may leave."""
    from orchestration.partnership.releases.audit import audit_release

    return audit_release(folder, protocol, warehouse=warehouse, releases_dir=releases_dir, key=key)


def _dbt_descriptions(source: str) -> tuple[str, dict[str, str]]:
    """The model's and its columns' descriptions from the dbt manifest, when it has been built."""
    from orchestration.partnership.settings import PROJECT_ROOT

    manifest = PROJECT_ROOT / "dbt_project" / "target" / "manifest.json"
    try:
        raw = manifest.read_bytes()
    except FileNotFoundError:
        return "", {}
    return _descriptions_in(hashlib.sha256(raw).hexdigest(), raw).get(source.split(".", 1)[1], ("", {}))


_descriptions_read: dict[str, dict[str, tuple[str, dict[str, str]]]] = {}


def _descriptions_in(digest: str, raw: bytes) -> dict[str, tuple[str, dict[str, str]]]:
    """Model or seed name -> its description and its columns', from the dbt manifest's bytes. The
    manifest (2 MB at county scale) is parsed once per process while its bytes are the same: a
    night's releases read it twice each (fingerprint, data dictionary)."""
    if digest not in _descriptions_read:
        try:
            nodes = json.loads(raw)["nodes"]
        except (ValueError, KeyError):
            nodes = {}
        found: dict[str, tuple[str, dict[str, str]]] = {}
        for node in nodes.values():
            if node.get("resource_type") in ("model", "seed") and node.get("name") not in found:
                found[node.get("name")] = (node.get("description", ""),
                                       {c: v.get("description", "") for c, v in node.get("columns", {}).items()})
        _descriptions_read.clear()
        _descriptions_read[digest] = found
    return _descriptions_read[digest]


def _dictionary(protocol: Protocol, tables: dict[str, pl.DataFrame]) -> str:
    lines = [f"# {protocol.doc['title']}", "", f"Protocol `{protocol.id}` v{protocol.version} — level: {protocol.level}; "
             f"recipient: {protocol.doc['recipient']['name']}.", "", protocol.doc["purpose"].strip(), "",
             f"Keep this copy no longer than {protocol.doc['retention']['recipient_copy_days']} days."
             + (f" {protocol.doc['retention']['on_expiry'].strip()}" if protocol.doc["retention"].get("on_expiry") else ""), ""]
    if protocol.disclosure:
        dc = protocol.disclosure
        lines += [f"Disclosure control: counts from {dc['suppress_counts_from']} to {dc['suppress_counts_to']} are suppressed "
                  f"(value empty, `<count>_suppressed` true); other counts are rounded to the nearest {dc['rounding_base']} "
                  f"(`<count>_rounding_base`); rates and intervals of a row with a suppressed count are withheld "
                  f"(`derived_withheld` true)."]
        if protocol.margins:
            lines += ["Further cells are suppressed (secondary suppression) so that no suppressed count can be worked out "
                      "from these totals: " + "; ".join(m["name"] for m in protocol.margins) + "."]
        lines.append("")
    for out in protocol.outputs:
        df = tables[out["table"]]
        model_doc, col_docs = _dbt_descriptions(out["source"])
        pseudonyms, ids = out.get("pseudonyms") or {}, (out.get("identifiers") or {}).get("columns", {})
        gen = out.get("generalisation") or {}
        lines += [f"## {out['table']}", "", out.get("description", "").strip() or model_doc, "",
                  "| column | type | description |", "|---|---|---|"]
        for c, t in df.schema.items():
            if c in pseudonyms:
                d = f"Pseudonym of the {pseudonyms[c].replace('_', ' ')}, unique to this recipient: it cannot be joined to any other release's."
            elif c in ids:
                d = f"{ids[c].replace('_', ' ').capitalize()} as last recorded by a source this protocol names."
            elif c.endswith("_suppressed"):
                d = f"True when `{c[:-11]}` is suppressed (its value is empty)."
            elif c.endswith("_rounding_base"):
                d = f"`{c[:-14]}` is rounded to the nearest multiple of this."
            elif c == "derived_withheld":
                d = "True when the row's rates and intervals are withheld because a count is suppressed."
            else:
                d = col_docs.get(c, "")
            if c in gen:
                d = (d + f" Generalised: {gen[c].replace('_', ' ')}.").strip()
            lines.append(f"| {c} | {t} | {' '.join(d.split())} |")
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


def _data_quality(con: duckdb.DuckDBPyConnection, protocol: Protocol, release_date: date) -> dict:
    """Hook: the board pack's data-quality facts (agency-level counts from ops.deliveries)."""
    from orchestration.partnership.settings import get_settings

    return data_quality.for_release(con, protocol.id, protocol.doc["controllers"],
                                    _contracts(get_settings().contracts_dir), release_date)


_contracts_read: dict[tuple, dict] = {}


def _contracts(contracts_dir: Path) -> dict:
    """The agency contracts by id, as `load_contracts` reads them (parsed and schema-checked: a quarter
    of a second). A night builds several releases against the same files, so the result is kept for
    this process under the files' names and bytes (any edit, added or removed file reads them again)."""
    from orchestration.partnership.contracts.model import load_contracts

    key = (str(Path(contracts_dir).resolve()),
           tuple((f.relative_to(contracts_dir).as_posix(), f.read_bytes()) for f in sorted(Path(contracts_dir).glob("*/*.odcs.yaml"))))
    if key not in _contracts_read:
        _contracts_read.clear()
        _contracts_read[key] = {c.id: c for c in load_contracts(contracts_dir).values()}
    return _contracts_read[key]


def _log(con: duckdb.DuckDBPyConnection, protocol: Protocol, release_date: date, status: str,
         path: Path | None, content: str | None, reason: str) -> int:
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
    return seq


def _latest_content(con: duckdb.DuckDBPyConnection, protocol_id: str) -> str | None:
    con.execute(RELEASE_LOG_DDL)
    row = con.execute(
        """select content_sha256 from ops.release_log where protocol_id = ? and status in ('published', 'unchanged')
           order by seq desc limit 1""", [protocol_id]).fetchall()
    return row[0][0] if row else None


def record_report(reports_dir: Path, release_date: date, result: ReleaseResult) -> Path:
    """The night's release report: one entry per protocol (status, reason, path, rows), JSON."""
    path = Path(reports_dir) / "releases" / f"{release_date.isoformat()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(path.read_text()) if path.exists() else {"release_date": release_date.isoformat(), "protocols": {}}
    report["protocols"][result.protocol_id] = {"status": result.status, "reason": result.reason,
                                               "path": str(result.path) if result.path else None,
                                               "row_counts": result.row_counts}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def release(warehouse: Path, releases_dir: Path, protocol: Protocol, release_date: date,
            reports_dir: Path | None = None) -> ReleaseResult:
    """Build, audit and publish one protocol's release for `release_date`."""
    result = _release(warehouse, releases_dir, protocol, release_date)
    if reports_dir is not None:
        record_report(reports_dir, release_date, result)
    return result


def _release(warehouse: Path, releases_dir: Path, protocol: Protocol, release_date: date) -> ReleaseResult:
    ok, why = protocol.in_force(release_date)
    if not ok:
        with connect(warehouse) as con:
            _log(con, protocol, release_date, "not_in_force", None, None, why)
        return ReleaseResult(protocol.id, "not_in_force", reason=why)

    person_level = any(_person_level(o) for o in protocol.outputs)
    try:
        with connect(warehouse, read_only=True) as con:
            key = _checked_key(con) if person_level else None
            scoped = scope_once(con, protocol, key)
            fingerprint, parts = input_fingerprint(con, protocol, key, scoped)
            cur = _current(con, protocol.id)
            why_computed = ""  # why a release whose inputs are unchanged is computed all the same
            unchanged = False
            if cur is not None and cur.input_sha256 == fingerprint:
                why_computed = _intact(cur, protocol, releases_dir, release_date) or ""
                unchanged = not why_computed
            if not unchanged:
                tables = build_tables(con, protocol, key, scoped)
                lineage = _lineage(con, protocol)
                quality = _data_quality(con, protocol, release_date) if protocol.level == "aggregate" else None
        if unchanged:
            return _unchanged(warehouse, protocol, release_date, cur, fingerprint, parts)
    except SourceMissing as exc:
        with connect(warehouse) as con:
            _log(con, protocol, release_date, "blocked", None, None, str(exc))
        return ReleaseResult(protocol.id, "blocked", reason=str(exc))

    final = releases_dir / protocol.id / release_date.isoformat()
    tmp = final.with_name(f".building-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "parquet").mkdir(parents=True)
        with duckdb.connect(str(tmp / f"{protocol.id}.duckdb")) as out:
            for name, df in tables.items():
                out.register("_df", df)
                out.execute(f'create table "{name}" as select * from _df')
                out.unregister("_df")
        for name, df in tables.items():
            # uncompressed: what leaves can be read (and scanned for identifiers) byte for byte
            df.write_parquet(tmp / "parquet" / f"{name}.parquet", statistics=False, compression="uncompressed")
        (tmp / "data_dictionary.md").write_text(_dictionary(protocol, tables))
        extra_files = {}
        if quality is not None:
            (tmp / data_quality.DATA_QUALITY_FILE).write_text(json.dumps(quality, indent=2, sort_keys=True) + "\n")
            extra_files[data_quality.DATA_QUALITY_FILE] = _sha256(tmp / data_quality.DATA_QUALITY_FILE)
        parquet_hashes = {f"parquet/{n}.parquet": _sha256(tmp / "parquet" / f"{n}.parquet") for n in sorted(tables)}
        content = hashlib.sha256(json.dumps(parquet_hashes, sort_keys=True).encode()).hexdigest()
        manifest = {
            "protocol": {"id": protocol.id, "version": protocol.version, "level": protocol.level,
                         "recipient": protocol.doc["recipient"]["name"], "recipient_id": protocol.recipient_id},
            "release_date": release_date.isoformat(),
            "period": _period(tables),
            "retention": {"recipient_copy_days": protocol.doc["retention"]["recipient_copy_days"],
                          "delete_by": (release_date + timedelta(days=protocol.doc["retention"]["recipient_copy_days"])).isoformat()},
            "content_sha256": content,
            "row_counts": {n: df.height for n, df in sorted(tables.items())},
            "files": {**parquet_hashes, f"{protocol.id}.duckdb": _sha256(tmp / f"{protocol.id}.duckdb"),
                      "data_dictionary.md": _sha256(tmp / "data_dictionary.md"), **extra_files},
            "lineage": {"deliveries": lineage},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

        problems = audit(tmp, protocol, warehouse=warehouse, releases_dir=releases_dir, key=key)
        if problems:
            raise ReleaseBlocked("; ".join(problems))

        pause_point("release:before_publish")  # crash tests only; inert otherwise
        with connect(warehouse) as con:
            kept = _folder_files(final) if final.exists() and _latest_content(con, protocol.id) == content else None
            if kept is not None:  # the same content, already in place and intact: not written again
                shutil.rmtree(tmp)
                reason = "same content as the latest release" + (f" (computed: {why_computed})" if why_computed else "")
                con.begin()
                seq = _log(con, protocol, release_date, "unchanged", final, content, reason)
                _record_inputs(con, seq, protocol.id, release_date, final, fingerprint, parts, kept)
                con.commit()
                return ReleaseResult(protocol.id, "unchanged", final, row_counts=manifest["row_counts"])
            files = {**manifest["files"], "manifest.json": _sha256(tmp / "manifest.json")}
            if final.exists():  # a second release on the same day replaces the first, never half-way
                old = final.with_name(f".replaced-{final.name}-{os.getpid()}")
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old)
            else:
                os.replace(tmp, final)
            con.begin()
            seq = _log(con, protocol, release_date, "published", final, content, "")
            _record_inputs(con, seq, protocol.id, release_date, final, fingerprint, parts, files)
            con.commit()
        return ReleaseResult(protocol.id, "published", final, row_counts=manifest["row_counts"])
    except ReleaseBlocked as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        with connect(warehouse) as con:
            _log(con, protocol, release_date, "blocked", None, None, str(exc))
        raise
    except (OSError, duckdb.Error, pl.exceptions.PolarsError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _disk_full(exc):
            raise
        reason = (f"no space left on the device while writing the release under {releases_dir}; nothing was "
                  "published and the previous release stays as it was. Free space, then run again.")
        try:
            with connect(warehouse) as con:
                _log(con, protocol, release_date, "blocked", None, None, reason)
        except (OSError, duckdb.Error):
            pass  # the warehouse may share the full disk: the error below still says what happened
        raise ReleaseBlocked(reason) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unchanged(warehouse: Path, protocol: Protocol, release_date: date, cur: _Current, fingerprint: str,
               parts: dict) -> ReleaseResult:
    """Log the current release as tonight's, unchanged, without computing it: its inputs are the
    ones it was computed from and its files are intact."""
    reason = (f"inputs unchanged since the release of {cur.release_date.isoformat()} (input sha256 {fingerprint[:12]}); "
              "files intact; not recomputed")
    manifest = json.loads((cur.path / "manifest.json").read_text())
    with connect(warehouse) as con:
        con.begin()
        seq = _log(con, protocol, release_date, "unchanged", cur.path, cur.content, reason)
        _record_inputs(con, seq, protocol.id, cur.release_date, cur.path, fingerprint, parts, cur.files)
        con.commit()
    return ReleaseResult(protocol.id, "unchanged", cur.path, reason=reason, row_counts=manifest.get("row_counts", {}))


def _disk_full(exc: BaseException) -> bool:
    """The device is full, as the OS (ENOSPC, EDQUOT), DuckDB or polars says it."""
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) \
        or "no space left on device" in str(exc).lower()


def _checked_key(con: duckdb.DuckDBPyConnection) -> bytes:
    """The pseudonymisation key, only if it is the one the warehouse (open on `con`) was built with:
    a changed key would silently give every recipient new pseudonyms, breaking their linkage between releases."""
    key = ps.load_key()
    row = con.execute("select value from ops.settings where name = 'key_fingerprint'").fetchall()
    if row and row[0][0] != ps.fingerprint(key):
        raise ps.PseudonymKeyError(
            f"the pseudonymisation key differs from the one this warehouse was built with (fingerprint "
            f"{ps.fingerprint(key)}, expected {row[0][0]}); no release was built. Restore the key (docs/linkage.md).")
    return key


def _period(tables: dict[str, pl.DataFrame]) -> dict:
    """The first and last day the release's rows cover (from period or month columns)."""
    lo, hi = [], []
    for df in tables.values():
        for start, end in (("period_start", "period_end"), ("event_month", "event_month"), ("month_start", "month_start")):
            if start in df.columns and df.height:
                lo.append(df[start].min())
                hi.append(df[end if end in df.columns else start].max())
    lo, hi = [x for x in lo if x is not None], [x for x in hi if x is not None]
    return {"from": min(lo).isoformat() if lo else None, "to": max(hi).isoformat() if hi else None}
