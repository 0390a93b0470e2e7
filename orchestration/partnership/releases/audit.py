"""The independent audit of a built release, and the check of the release log. Fail closed.

This module does not use the release builder's code: it reads the built files (Parquet,
the DuckDB file, the text files) and the protocol file, and — read-only — the secure zone's
reference, linkage and identity tables, and checks every rule of the protocol again its own
way. Any finding means nothing is published; the findings are the reason reported. A finding
never quotes a personal value: it names the table, the column and how many values broke the rule.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

import orchestration.partnership.boardpack.quality as data_quality
from orchestration.partnership.releases.protocols import Protocol, load_protocols
from orchestration.partnership.warehouse.connection import configure, table_exists

BOARD_PACK_FILES = ("board_pack.html", "board_pack.pdf")
TEXT_FILES = ("manifest.json", "data_dictionary.md", data_quality.DATA_QUALITY_FILE)

NHS_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![0-9A-Za-z])")
POSTCODE = re.compile(r"(?<![A-Za-z0-9])([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})(?![A-Za-z0-9])")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
FORMS = {
    "lsoa": re.compile(r"^E01[0-9]{6}$"),
    "ward": re.compile(r"^E05[0-9]{6}$"),
    "age_band_5y": re.compile(r"^(?:([0-9]{1,2})-([0-9]{1,2})|90\+)$"),
}
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
HEX_VALUE = re.compile(r"[0-9a-f]{64}")  # a pseudonym's shape
HEX_LETTERS = re.compile(r"[a-f]+")  # the words `WORD` finds in one


def nhs_check_digit_ok(digits: str) -> bool:
    """Modulus 11 over the first nine digits (weights 10..2); 10 is never valid, 11 means 0."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _derived_key(key: bytes, context: str) -> bytes:
    """A recipient's HMAC key: HMAC-SHA256(key, context)."""
    return hmac.new(key, context.encode(), hashlib.sha256).digest()


def _pseudonymiser(key: bytes, context: str):
    """A recipient's pseudonym of a value: HMAC-SHA256 keyed by HMAC-SHA256(key, context). The
    context's key is derived, and the inner and outer SHA-256 keyed (RFC 2104), once; each value
    copies them (hundreds of thousands of values: `hmac` objects' copies take twice as long)."""
    derived = hmac.new(key, context.encode(), hashlib.sha256).digest().ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in derived))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in derived))

    def pseudonym(value: str) -> str:
        i, o = inner.copy(), outer.copy()
        i.update(value.encode())
        o.update(i.digest())
        return o.hexdigest()

    return pseudonym


def _allowed_columns(protocol: Protocol, out: dict) -> list[str]:
    cols = []
    counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
    for c in out["columns"]:
        cols.append(c)
        if protocol.level == "aggregate" and c in counts:
            cols += [f"{c}_suppressed", f"{c}_rounding_base"]
    if protocol.level == "aggregate" and derived:
        cols.append("derived_withheld")
    return cols


# ---------------------------------------------------------------- secure-zone facts, read-only

_names_read: dict[tuple, tuple[frozenset, frozenset, frozenset]] = {}


def _names(con: duckdb.DuckDBPyConnection, warehouse: Path, names_sql: str) -> tuple[frozenset, frozenset, frozenset]:
    """The identity schema's full names (forename, surname: case-folded, stripped), every name of
    them, and those made of the letters a-f only (the full names a pseudonym's words can form).

    Reading them (the distinct pairs of millions of rows, folded in Python) is most of an aggregate
    release's audit, and a night audits several releases of the same identity schema in one process:
    the names are kept for the next audit of this process, under the row count and the sum of
    DuckDB's 64-bit hash of every (forename, surname) row read — a hash of the rows as a multiset,
    which any added, removed or edited name changes (a fifth of the read). Read again otherwise."""
    count, digest = con.execute(f"select count(*), sum(hash(f, s)::hugeint) from ({names_sql})").fetchall()[0]
    key = (str(Path(warehouse).resolve()), names_sql, count, str(digest))
    if key not in _names_read:
        full = set()
        for fn, sn in con.execute(f"select distinct f, s from ({names_sql})").fetchall():
            if fn and sn:
                full.add((fn.casefold().strip(), sn.casefold().strip()))
        hex_pairs = {(a, b) for a, b in full if HEX_LETTERS.fullmatch(a) and HEX_LETTERS.fullmatch(b)}
        _names_read.clear()  # one warehouse's names at a time
        _names_read[key] = (frozenset(full), frozenset(n for pair in full for n in pair), frozenset(hex_pairs))
    return _names_read[key]


class _Zone:
    """What the audit needs from the warehouse, read once, read-only, on one read-only connection
    held for the audit (`close` ends it): opening the county warehouse file costs a tenth of a
    second or more each time."""

    def __init__(self, warehouse: Path):
        self.full_names: frozenset[tuple[str, str]] = frozenset()
        self.names: frozenset[str] = frozenset()
        self.hex_pairs: frozenset[tuple[str, str]] = frozenset()  # see `_names`
        self.lsoa_ward: dict[str, str] = {}
        self.ward_district: dict[str, str] = {}
        self._con = con = duckdb.connect(str(warehouse), read_only=True)
        try:
            configure(con)
            tables = con.execute("select table_schema, table_name from information_schema.tables").fetchall()
            have = {f"{s}.{t}" for s, t in tables}
            numbers, names = [], []
            identity_cols: dict[str, set[str]] = defaultdict(set)
            for table, column in con.execute("select table_name, column_name from information_schema.columns "
                                             "where table_schema = 'identity'").fetchall():
                identity_cols[table].add(column)
            for schema, table in tables:
                if schema != "identity":
                    continue
                cols = identity_cols[table]
                numbers += [f'select cast("{c}" as varchar) as v from identity."{table}"'
                            for c in sorted(cols & {"nhs_number", "nhs_number_l", "nhs_number_r"})]
                names += [f'select cast("{f}" as varchar) as f, cast("{s}" as varchar) as s from identity."{table}"'
                          for f, s in (("forename", "surname"), ("forename_l", "surname_l"), ("forename_r", "surname_r"))
                          if {f, s} <= cols]
            # NHS numbers are read only when a released value holds one (`known_nhs`): a county's are 700,000
            self._numbers_sql = " union all ".join(numbers)
            if names:
                self.full_names, self.names, self.hex_pairs = _names(con, warehouse, " union all ".join(names))
            if "reference.geography_lsoas" in have:
                self.lsoa_ward = dict(con.execute("select lsoa_code, ward_code from reference.geography_lsoas").fetchall())
            if "reference.geography_wards" in have:
                self.ward_district = dict(con.execute("select ward_code, district_code from reference.geography_wards").fetchall())
            self.have = have
        except BaseException:
            con.close()
            raise

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "_Zone":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @functools.cached_property
    def has_persons(self) -> bool:
        """The person index is there and not empty."""
        return "linkage.persons" in self.have and bool(self.source_rows("select count(*) from linkage.persons")[0][0])

    @functools.cached_property
    def opted_out(self) -> list[str]:
        """The person_id of everyone with a national data opt-out."""
        return [p for (p,) in self.source_rows("select person_id from linkage.persons where opted_out")]

    def hashed_ids(self, source: str, column: str, key: bytes, contexts: dict[str, str]) -> pl.DataFrame:
        """The distinct ids of `column` in `source` (the table a release reads): only these can be
        pseudonymised in its rows. A person or household column keeps only ids of the person index.
        Column `id`, and one column per name of `contexts` holding each id's pseudonym for that
        recipient (`_pseudonymiser`: the audit's own HMAC, not DuckDB's, which is no faster)."""
        index = {"person_id": "select person_id from linkage.persons",
                 # a household is an address: one nobody lives at now is in no person's row
                 "household_id": "select household_id from linkage.persons union "
                                 "select household_id from linkage.household_members"}.get(column)
        inside = f' and "{column}" in ({index})' if index else ""
        ids = [r[0] for r in self.source_rows(f'select distinct cast("{column}" as varchar) from {source} '
                                              f'where "{column}" is not null{inside} order by 1')]
        hashed = {"id": ids}
        for name, ctx in contexts.items():
            of = _pseudonymiser(key, ctx)
            hashed[name] = [of(i) for i in ids]
        return pl.DataFrame(hashed, schema={c: pl.Utf8 for c in hashed})

    def known_nhs(self, candidates: set[str]) -> set[str]:
        """Those of `candidates` (ten digits each) that are NHS numbers in the identity schema, each
        identity value normalised to its digits. Only values whose ASCII digits are a candidate, or
        that hold a character beyond ASCII (normalised here, as Python counts digits), are read."""
        if not candidates or not self._numbers_sql:
            return set()
        rows = self.source_rows(
            f"""with c as (select unnest(cast(? as varchar[])) as d)
                select distinct v from ({self._numbers_sql}) where v in (select d from c)
                   or (not regexp_full_match(v, '[0-9]{{10}}') and (regexp_matches(v, '[^\\x00-\\x7F]')
                       or regexp_replace(v, '[^0-9]', '', 'g') in (select d from c)))""", [sorted(candidates)])
        return {v if re.fullmatch("[0-9]{10}", v) else re.sub(r"\D", "", v) for (v,) in rows} & candidates

    def source_rows(self, sql: str, params: list | None = None) -> list[tuple]:
        return self._con.execute(sql, params or []).fetchall()


# ---------------------------------------------------------------- the checks

_recipients_read: dict[tuple, list[tuple[str, str, str]]] = {}


def _recipients(protocols_dir: Path) -> list[tuple[str, str, str]]:
    """(recipient id, level, pseudonym context) of every protocol in `protocols_dir`, as
    `load_protocols` reads them (schema-checked). Parsing and checking the YAML files is a third
    of a second; a night audits several releases against the same files, so the result is kept
    for this process under the files' names and bytes (any edit, added or removed file reads them again)."""
    key = (str(Path(protocols_dir).resolve()),
           tuple((f.name, f.read_bytes()) for f in sorted(Path(protocols_dir).glob("*.yaml"))))
    if key not in _recipients_read:
        _recipients_read.clear()
        _recipients_read[key] = [(p.recipient_id, p.level, p.pseudonym_context)
                                 for p in load_protocols(protocols_dir).values()]
    return _recipients_read[key]


def _check_files(folder: Path, protocol: Protocol, problems: list[str]) -> dict | None:
    expected = {f"{protocol.id}.duckdb", "parquet", "manifest.json", "data_dictionary.md"}
    if protocol.level == "aggregate":
        expected |= {data_quality.DATA_QUALITY_FILE, *BOARD_PACK_FILES}
    present = {p.name for p in folder.iterdir()}
    if present - expected:
        problems.append(f"unexpected files {sorted(present - expected)}")
    parquet_present = {p.name for p in (folder / "parquet").iterdir()} if (folder / "parquet").is_dir() else set()
    parquet_allowed = {f"{o['table']}.parquet" for o in protocol.outputs}
    if parquet_present - parquet_allowed:
        problems.append(f"unexpected parquet files {sorted(parquet_present - parquet_allowed)}")
    if (folder / data_quality.DATA_QUALITY_FILE).exists():
        problems += data_quality.check(json.loads((folder / data_quality.DATA_QUALITY_FILE).read_text()))
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        problems.append("manifest.json missing or unreadable")
        return None
    if manifest.get("protocol", {}).get("id") != protocol.id or manifest["protocol"].get("version") != protocol.version:
        problems.append("manifest.json names another protocol or version")
    for rel, digest in (manifest.get("files") or {}).items():
        f = folder / rel
        if not f.is_file() or _sha256(f) != digest:
            problems.append(f"manifest.json: {rel} is missing or its sha256 differs")
    listed = set(manifest.get("files") or {})
    for f in folder.rglob("*"):
        rel = f.relative_to(folder).as_posix()
        if f.is_file() and rel not in listed and rel not in ("manifest.json", *BOARD_PACK_FILES):
            problems.append(f"{rel} is not listed in manifest.json")
    return manifest


def _check_database(folder: Path, protocol: Protocol, tables: dict[str, pl.DataFrame], problems: list[str]) -> None:
    db = folder / f"{protocol.id}.duckdb"
    if not db.exists():
        problems.append(f"{db.name} missing")
        return
    with duckdb.connect(str(db), read_only=True) as con:
        found = {(s, t) for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()}
        views = con.execute("select count(*) from duckdb_views() where not internal").fetchall()[0][0]
        allowed = {("main", o["table"]) for o in protocol.outputs}
        if found != allowed:
            problems.append(f"database tables {sorted(t for _, t in found)} differ from the protocol's {sorted(t for _, t in allowed)}")
        if views:
            problems.append(f"the database holds {views} views; a release holds tables only")
        for out in protocol.outputs:
            if ("main", out["table"]) not in found or out["table"] not in tables:
                continue
            cols = [r[0] for r in con.execute(f'describe "{out["table"]}"').fetchall()]
            n = con.execute(f'select count(*) from "{out["table"]}"').fetchall()[0][0]
            if cols != tables[out["table"]].columns or n != tables[out["table"]].height:
                problems.append(f"{db.name}: table {out['table']} differs from its Parquet file (columns or rows)")


def _check_columns_and_rows(protocol: Protocol, out: dict, df: pl.DataFrame, zone: _Zone | None, problems: list[str]) -> None:
    t = out["table"]
    for key, allowed in (out.get("row_filters") or {}).items():
        if key == "cells":
            ok = pl.lit(False)
            for cell in allowed:
                ok = ok | pl.all_horizontal([pl.col(k) == v for k, v in cell.items()])
            bad = df.filter(~ok).height
            if bad:
                problems.append(f"{t}: {bad} rows outside the allowed cells")
        elif key == "age":
            if allowed["column"] not in df.columns:
                problems.append(f"{t}: the age filter's column {allowed['column']} is not released, so it cannot be verified")
            elif (bad := df.filter(~pl.col(allowed["column"]).is_in(allowed["values"])).height):
                problems.append(f"{t}: {bad} rows outside the age filter on {allowed['column']}")
        elif key == "cohort":
            if allowed["column"] in df.columns:
                bad = df.filter(pl.col(allowed["column"]) != allowed.get("equals", True)).height
                if bad:
                    problems.append(f"{t}: {bad} rows outside the cohort")
        elif key == "geography":
            col, within = allowed["column"], set(allowed["within"])
            if col not in df.columns:
                problems.append(f"{t}: the geography filter's column {col} is not released, so it cannot be verified")
                continue
            if zone is None or not zone.ward_district:
                problems.append(f"{t}: the geography filter cannot be verified without the reference geography")
                continue

            def inside(code: str | None) -> bool:
                if code is None:
                    return False
                chain = [code]
                if allowed["level"] == "lsoa":
                    chain.append(zone.lsoa_ward.get(code))
                if allowed["level"] in ("lsoa", "ward"):
                    chain.append(zone.ward_district.get(chain[-1]))
                return any(c in within for c in chain if c)

            bad = sum(n for v, n in Counter(df[col].to_list()).items() if not inside(v))
            if bad:
                problems.append(f"{t}: {bad} rows outside the area {sorted(within)} on {col}")
        else:
            if key not in df.columns:
                problems.append(f"{t}: the row filter's column {key} is not released, so it cannot be verified")
            elif (bad := df.filter(~pl.col(key).is_in(allowed) | pl.col(key).is_null()).height):
                problems.append(f"{t}: {bad} rows outside the row filter on {key}")
    for col, form in (out.get("generalisation") or {}).items():
        values = Counter(v for v in df[col].to_list() if v is not None)  # each distinct value checked once
        if form in ("month", "quarter"):
            bad = sum(n for v, n in values.items() if not isinstance(v, date) or isinstance(v, datetime) or v.day != 1
                      or (form == "quarter" and v.month not in (1, 4, 7, 10)))
        elif form == "age_band_5y":
            def band_ok(v) -> bool:
                m = FORMS["age_band_5y"].match(str(v))
                return bool(m) and (m.group(1) is None or int(m.group(2)) - int(m.group(1)) == 4)
            bad = sum(n for v, n in values.items() if not band_ok(v))
        else:
            bad = sum(n for v, n in values.items() if not FORMS[form].match(str(v)))
        if bad:
            problems.append(f"{t}.{col}: {bad} values finer than {form}")
    if protocol.level != "aggregate":
        gen = out.get("generalisation") or {}
        for col, dtype in df.schema.items():
            if dtype == pl.Datetime or (dtype == pl.Date and col not in gen and col not in (out.get("identifiers") or {}).get("columns", {})):
                problems.append(f"{t}.{col}: an exact date or time in person-level rows (not generalised by the protocol)")


def _check_counts(protocol: Protocol, out: dict, df: pl.DataFrame, problems: list[str]) -> None:
    t = out["table"]
    counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
    dc = protocol.disclosure
    low, high, base = dc["suppress_counts_from"], dc["suppress_counts_to"], dc["rounding_base"]
    for c in counts:
        if (small := df.filter(pl.col(c).is_between(low, high)).height):
            problems.append(f"{t}.{c}: {small} cells between {low} and {high}")
        if (unrounded := df.filter(pl.col(c).is_not_null() & (pl.col(c) % base != 0)).height):
            problems.append(f"{t}.{c}: {unrounded} values not rounded to {base}")
        if (shown := df.filter(pl.col(f"{c}_suppressed") & pl.col(c).is_not_null()).height):
            problems.append(f"{t}.{c}: {shown} cells flagged suppressed still show a value")
        if df.filter(pl.col(f"{c}_rounding_base") != base).height:
            problems.append(f"{t}.{c}: rounding base differs from the protocol's {base}")
    if derived and counts:
        any_sup = pl.any_horizontal([pl.col(f"{c}_suppressed") for c in counts])
        if (leaked := df.filter(any_sup & pl.any_horizontal([pl.col(d).is_not_null() for d in derived])).height):
            problems.append(f"{t}: {leaked} rows show rates derived from suppressed counts")
        if df.filter(any_sup != pl.col("derived_withheld")).height:
            problems.append(f"{t}: derived_withheld does not match the suppressed counts")
    if protocol.margins:
        for c in counts:
            n = recoverable_cells(df, c, protocol.margins)
            if n:
                problems.append(f"{t}.{c}: {n} suppressed cells can be recovered from the margins "
                                f"({', '.join(m['name'] for m in protocol.margins)})")


def recoverable_cells(df: pl.DataFrame, count: str, margins: list[dict]) -> int:
    """Suppressed cells of `count` whose value follows from the published cells and the margins.

    Built independently of the builder: each margin group is an equation total − Σ members = 0;
    with the published cells moved to the right-hand side, a suppressed cell is determined exactly
    when every vector of the null space of the unknowns' matrix is zero at that cell."""
    rows = df.with_row_index("_i")
    suppressed = set(rows.filter(pl.col(f"{count}_suppressed"))["_i"].to_list())
    if not suppressed:
        return 0
    equations: list[dict[int, float]] = []
    for m in margins:
        member_ok = pl.col(m["column"]).is_in(m["members"]) if m.get("members") else pl.col(m["column"]).str.starts_with(m["members_prefix"])
        tot = rows.filter(pl.col(m["column"]) == m["total"]).group_by(m["by"]).agg(pl.col("_i").alias("t"))
        mem = rows.filter(member_ok & (pl.col(m["column"]) != m["total"])).group_by(m["by"]).agg(pl.col("_i").alias("m"))
        for r in tot.join(mem, on=m["by"], how="inner", nulls_equal=True).iter_rows(named=True):
            for t in r["t"]:
                eq: dict[int, float] = defaultdict(float)
                eq[t] += 1.0
                for i in r["m"]:
                    eq[i] -= 1.0
                equations.append({i: v for i, v in eq.items() if i in suppressed})
    equations = [e for e in equations if e]
    if not equations:
        return 0
    # connected groups of unknowns, each solved on its own
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for e in equations:
        cells = list(e)
        for c in cells[1:]:
            parent[find(c)] = find(cells[0])
    groups: dict[int, list[dict[int, float]]] = defaultdict(list)
    for e in equations:
        groups[find(next(iter(e)))].append(e)
    found = 0
    # many small decompositions: BLAS threads only wait on each other (tenfold slower on a busy machine)
    with threadpool_limits(limits=1, user_api="blas"):
        for eqs in groups.values():
            cells = sorted({c for e in eqs for c in e})
            idx = {c: j for j, c in enumerate(cells)}
            a = np.zeros((len(eqs), len(cells)))
            for r, e in enumerate(eqs):
                for c, v in e.items():
                    a[r, idx[c]] = v
            _, sv, vt = np.linalg.svd(a, full_matrices=False)
            rank = int((sv > 1e-9).sum())
            # the right singular vectors are orthonormal: a cell's squared component in the null space is 1 minus
            # its squared component in the row space (the first `rank` of them)
            in_null = 1.0 - (vt[:rank] ** 2).sum(axis=0)
            found += int((in_null < 1e-12).sum())
    return found


def _strings(df: pl.DataFrame, skip: set[str]) -> list[tuple[str, Counter[str]]]:
    """Text columns' values, and integers of NHS-number size as text (a number column can carry one
    too), each column's as a count of each distinct value (counted by polars: a column of age bands
    has a handful of values in a hundred thousand rows)."""
    out = []
    for c, dt in df.schema.items():
        if c in skip:
            continue
        if dt in (pl.Utf8, pl.String, pl.Categorical):
            col = df[c].cast(pl.Utf8).drop_nulls()
        elif dt.is_integer():
            col = df[c].drop_nulls()
            col = col if dt == pl.UInt64 else col.cast(pl.Int64)  # room for the bounds
            col = col.filter(col.is_between(10**9, 10**10, closed="left")).cast(pl.Utf8)
        else:
            continue
        vc = col.value_counts()
        out.append((c, Counter(dict(zip(vc[c].to_list(), vc["count"].to_list())))))
    return out


def _columns_holding(df: pl.DataFrame, values: set[str]) -> list[str]:
    """The columns of `df` `_strings` reads (text, and integers of NHS-number size as text) that hold
    any of `values`; text columns are matched in polars, without a Python string per row."""
    found = []
    wanted = pl.Series(sorted(values), dtype=pl.Utf8)
    for c, dt in df.schema.items():
        if dt in (pl.Utf8, pl.String, pl.Categorical):
            if df[c].cast(pl.Utf8).is_in(wanted).any():
                found.append(c)
        elif dt.is_integer() and values & {str(v) for v in df[c].to_list() if v is not None and 10**9 <= v < 10**10}:
            found.append(c)
    return found


def _identifier_findings(where: str, values: list[str] | Counter[str], zone: _Zone | None, exact_names: bool) -> list[str]:
    nhs = postcodes = names = 0
    found: Counter[str] = Counter()  # every NHS-number-shaped match, valid check digit or not
    # each distinct value is read once and counted as often as it occurs (a column of age bands or
    # agencies has a handful of values in a million rows)
    for v, n in (values if isinstance(values, Counter) else Counter(values)).items():
        if HEX_VALUE.fullmatch(v):
            # A pseudonym's shape (most values of a person-level release), checked the same way, only
            # faster: within 64 letters and digits no NHS-number match can find its boundaries, no
            # postcode has a capital letter, the value is its own case fold, and its words (runs of
            # a-f) can only form the full names made of those letters.
            if zone:
                if exact_names and v in zone.names:
                    names += n
                elif zone.hex_pairs:
                    words = HEX_LETTERS.findall(v)
                    names += n * sum((a, b) in zone.hex_pairs for a, b in zip(words, words[1:]))
            continue
        for m in NHS_NUMBER.finditer(v):
            digits = "".join(m.groups())
            found[digits] += n
            if nhs_check_digit_ok(digits):
                nhs += n
        postcodes += n * len(POSTCODE.findall(v))
        if zone:
            if exact_names and v.casefold().strip() in zone.names:
                names += n
            else:
                words = [w.casefold() for w in WORD.findall(v)]
                names += n * sum((a, b) in zone.full_names for a, b in zip(words, words[1:]))
    known = zone.known_nhs(set(found)) if zone and found else set()
    known_nhs = sum(n for d, n in found.items() if d in known)
    out = []
    if nhs:
        out.append(f"{where}: {nhs} values shaped like NHS numbers (valid check digit)")
    if known_nhs:
        out.append(f"{where}: {known_nhs} NHS numbers from the identity schema")
    if postcodes:
        out.append(f"{where}: {postcodes} values shaped like postcodes")
    if names:
        out.append(f"{where}: {names} names from the identity schema")
    return out


def _check_identifiers(folder: Path, protocol: Protocol, tables: dict[str, pl.DataFrame], zone: _Zone | None,
                       problems: list[str]) -> None:
    for out in protocol.outputs:
        df = tables.get(out["table"])
        if df is None:
            continue
        allowed_ids = set((out.get("identifiers") or {}).get("columns", {}))
        for col, values in _strings(df, allowed_ids):
            problems += _identifier_findings(f"{out['table']}.{col}", values, zone,
                                             exact_names=protocol.level != "aggregate")
    for name in TEXT_FILES:
        f = folder / name
        if f.exists():
            problems += _identifier_findings(name, f.read_text(encoding="utf-8", errors="replace").splitlines(), zone,
                                             exact_names=False)


def _check_people(protocol: Protocol, out: dict, df: pl.DataFrame, zone: _Zone | None, key: bytes | None,
                  releases_dir: Path | None, problems: list[str]) -> None:
    """Pseudonyms are this recipient's own, differ from every other recipient's, and exclude
    opted-out people from health-derived rows; consent rules hold."""
    t = out["table"]
    pseudonyms = out.get("pseudonyms") or {}
    for col in pseudonyms:
        bad = df.filter(pl.col(col).is_not_null() & ~pl.col(col).str.contains(HEX64.pattern)).height
        if bad:
            problems.append(f"{t}.{col}: {bad} values are not pseudonyms")
    if not pseudonyms and not out.get("opt_out") and not out.get("consent"):
        return
    if zone is None or key is None or not zone.has_persons:
        problems.append(f"{t}: person-level rows cannot be verified without the warehouse, its person index and the key")
        return
    ctx = protocol.pseudonym_context
    mine_of = _pseudonymiser(key, ctx)
    others = sorted({c for rid, level, c in _recipients(protocol.path.parent)
                     if rid != protocol.recipient_id and level != "aggregate"})
    # per pseudonymised source column: its ids and this recipient's pseudonym of each (`mine`); the
    # opt-out and consent checks below look their ids up here instead of hashing them again
    mine_by: dict[str, pl.DataFrame] = {}
    all_mine: dict[str, bool] = {}  # column -> every released value is the pseudonym of a source id
    for col, src in pseudonyms.items():
        released = df[col].drop_nulls().unique()
        # Every released value must be the pseudonym of an id the source holds (of a person or household
        # the index knows): the pseudonyms of the source's ids, not of the whole county's, are computed.
        # A clash with another recipient's pseudonym of an id outside the source would need an HMAC
        # collision between two keys; the same context is caught on the source's own ids.
        hashed = zone.hashed_ids(out["source"], src, key, {"mine": ctx})
        mine_by[src] = hashed
        not_mine = int((~released.is_in(hashed["mine"])).sum())
        all_mine[col] = not not_mine
        if not_mine:
            problems.append(f"{t}.{col}: {not_mine} values are not this recipient's pseudonyms")
        if released.is_in(hashed["id"]).any():
            problems.append(f"{t}.{col}: internal ids released in place of pseudonyms")
        for other in others:
            if all_mine[col]:
                # Every released value is this recipient's HMAC of a source id: it can equal another
                # recipient's HMAC of a source id only if the two derived keys are the same, or by an
                # HMAC collision between two keys (as for ids outside the source). The keys are
                # compared, and the other recipient's pseudonyms are not computed.
                clash = released.len() if _derived_key(key, other) == _derived_key(key, ctx) else 0
            else:  # blocked already: the clashes are counted too, to say so
                theirs = _pseudonymiser(key, other)
                clash = int(released.is_in(pl.Series([theirs(i) for i in hashed["id"].to_list()], dtype=pl.Utf8)).sum())
            if clash:
                problems.append(f"{t}.{col}: {clash} pseudonyms equal another recipient's")
    if releases_dir is not None and pseudonyms:
        released = set().union(*({v for v in df[c].to_list() if v is not None} for c in pseudonyms))
        for other_manifest in Path(releases_dir).glob("*/*/manifest.json"):
            m = json.loads(other_manifest.read_text())
            if m["protocol"].get("recipient_id") == protocol.recipient_id or m["protocol"]["level"] == "aggregate":
                continue
            for pq in (other_manifest.parent / "parquet").glob("*.parquet"):
                for c in _columns_holding(pl.read_parquet(pq), released):
                    problems.append(f"{t}: pseudonyms also appear in {m['protocol']['id']}'s release "
                                    f"{m['release_date']} ({pq.name}.{c})")
    oo = out.get("opt_out")
    if oo:
        col = next((c for c, s in pseudonyms.items() if s == oo["person_column"]), None)
        agency = oo.get("agency_column", "agency")
        if col is None or (agency not in df.columns and not oo.get("applies_to_all_rows")):
            problems.append(f"{t}: the opt-out rule cannot be verified (its person or agency column is not released)")
        else:
            if all_mine[col]:
                # every released value is the pseudonym of a source id (else the release is blocked
                # above): the opted-out people who can appear are those among the source's ids
                of_source = mine_by[oo["person_column"]]
                opted = set(of_source.filter(pl.col("id").is_in(zone.opted_out))["mine"].to_list())
            else:
                opted = {mine_of(p) for p in zone.opted_out}
            scope = df if oo.get("applies_to_all_rows") else df.filter(pl.col(agency).is_in(oo["health_derived_agencies"]))
            bad = scope.filter(pl.col(col).is_in(list(opted))).height
            if bad:
                problems.append(f"{t}: {bad} health-derived rows of people with a national data opt-out")
    for rule in out.get("consent") or []:
        agency = rule.get("agency_column", "agency")
        person_src = (out.get("opt_out") or {}).get("person_column", "person_id")
        col = next((c for c, s in pseudonyms.items() if s == person_src), None)
        if col is None or agency not in df.columns:
            problems.append(f"{t}: the consent rule cannot be verified (its person or agency column is not released)")
            continue
        marks = ", ".join("?" for _ in rule["agencies"])
        rows = zone.source_rows(f'''select cast("{person_src}" as varchar), count(*) from {out["source"]}
                                    where "{agency}" in ({marks}) and "{rule["column"]}" is true group by 1''',
                                rule["agencies"])
        of_source = mine_by.get(person_src)
        known = dict(of_source.filter(pl.col("id").is_in([p for p, _ in rows])).iter_rows()) if of_source is not None else {}
        consented = Counter({known.get(p) or mine_of(p): n for p, n in rows})
        shown = Counter(df.filter(pl.col(agency).is_in(rule["agencies"]))[col].to_list())
        bad = sum(max(0, n - consented.get(p, 0)) for p, n in shown.items())
        if bad:
            problems.append(f"{t}: {bad} rows from {', '.join(rule['agencies'])} without consent to share")


def audit_release(folder: Path, protocol: Protocol, warehouse: Path | None = None, releases_dir: Path | None = None,
                  key: bytes | None = None) -> list[str]:
    """Every finding that stops `folder` from leaving; an empty list means it may be published.

    Without `warehouse` only the checks that need nothing but the files run (used on published
    folders, e.g. after a board pack is added); the release engine always passes it."""
    folder = Path(folder)
    problems: list[str] = []
    ok, why = protocol.in_force(date.fromisoformat(json.loads((folder / "manifest.json").read_text())["release_date"])) \
        if (folder / "manifest.json").exists() else (True, "")
    if not ok:
        problems.append(why)
    _check_files(folder, protocol, problems)
    if warehouse is None:
        _audit_tables(folder, protocol, None, key, releases_dir, problems)
    else:
        with _Zone(Path(warehouse)) as zone:
            _audit_tables(folder, protocol, zone, key, releases_dir, problems)
    return problems


def _audit_tables(folder: Path, protocol: Protocol, zone: _Zone | None, key: bytes | None,
                  releases_dir: Path | None, problems: list[str]) -> None:
    tables: dict[str, pl.DataFrame] = {}
    for out in protocol.outputs:
        pq = folder / "parquet" / f"{out['table']}.parquet"
        if not pq.exists():
            problems.append(f"{pq.name} missing")
            continue
        df = pl.read_parquet(pq)
        tables[out["table"]] = df
        allowed = _allowed_columns(protocol, out)
        if df.columns != allowed:
            problems.append(f"{out['table']}: columns {df.columns} differ from the protocol's {allowed}")
            continue
        _check_columns_and_rows(protocol, out, df, zone, problems)
        if protocol.level == "aggregate" and out.get("counts"):
            _check_counts(protocol, out, df, problems)
        if protocol.level != "aggregate":
            _check_people(protocol, out, df, zone, key, releases_dir, problems)
    _check_database(folder, protocol, tables, problems)
    _check_identifiers(folder, protocol, tables, zone, problems)


# ---------------------------------------------------------------- the release log

def entry_hash(row: dict) -> str:
    """The hash of one ops.release_log entry: sha256 of its fields (all but entry_hash) as sorted JSON."""
    entry = {k: row[k] for k in ("seq", "protocol_id", "protocol_version", "status", "path", "content_sha256",
                                 "reason", "prev_hash")}
    entry["logged_at"] = row["logged_at"].isoformat()
    entry["release_date"] = row["release_date"].isoformat()
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


def verify_log(con: duckdb.DuckDBPyConnection) -> tuple[int, list[str]]:
    """(entries checked, problems) for ops.release_log: each entry's hash, the chain, and no gap
    or missing tail (the log's sequence knows how many entries were written)."""
    if not table_exists(con, "ops", "release_log"):
        return 0, []
    cols = [r[0] for r in con.execute("describe ops.release_log").fetchall()]
    rows = [dict(zip(cols, r)) for r in con.execute("select * from ops.release_log order by seq").fetchall()]
    problems = []
    prev = "0" * 64
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
