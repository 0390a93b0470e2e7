"""The audit's reader of the secure zone: what it needs from the warehouse, read-only, once per
audit, and the audit's own HMAC for recipients' pseudonyms (not the builder's SQL)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections import defaultdict
from pathlib import Path

import duckdb
import polars as pl

from orchestration.partnership.releases.audit.identifiers import HEX_LETTERS
from orchestration.partnership.warehouse.connection import configure


def derived_key(key: bytes, context: str) -> bytes:
    """A recipient's HMAC key: HMAC-SHA256(key, context)."""
    return hmac.new(key, context.encode(), hashlib.sha256).digest()


def pseudonymiser(key: bytes, context: str):
    """A recipient's pseudonym of a value: HMAC-SHA256 keyed by HMAC-SHA256(key, context), computed
    independently of the builder's SQL. The context's key is derived, and the inner and outer SHA-256
    keyed (RFC 2104), once; each value copies them, cheaper than copying `hmac` objects."""
    derived = hmac.new(key, context.encode(), hashlib.sha256).digest().ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in derived))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in derived))

    def pseudonym(value: str) -> str:
        i, o = inner.copy(), outer.copy()
        i.update(value.encode())
        o.update(i.digest())
        return o.hexdigest()

    return pseudonym


_names_read: dict[tuple, tuple[frozenset, frozenset, frozenset]] = {}


def _names(con: duckdb.DuckDBPyConnection, warehouse: Path, names_sql: str) -> tuple[frozenset, frozenset, frozenset]:
    """The identity schema's full names (forename, surname: case-folded, stripped), every name of
    them, and those made of the letters a-f only (the full names a pseudonym's words can form).

    Kept for the next audit of this process (a night audits several releases of one identity schema,
    and reading the names is most of an aggregate release's audit), under the row count and the sum
    of DuckDB's hash of every (forename, surname) row: a multiset hash that any added, removed or
    edited name changes, so changed names are read again."""
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


class Zone:
    """What the audit needs from the warehouse, read once, read-only, on one read-only connection
    held for the audit (`close` ends it), since opening the warehouse file is dearer than most of
    the audit's queries. A context manager."""

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
            # A view of the identity tables (`linkage_records`) shows values those tables hold: not read again.
            views = {t for (t,) in con.execute("select table_name from information_schema.tables "
                                               "where table_schema = 'identity' and table_type = 'VIEW'").fetchall()}
            for schema, table in tables:
                if schema != "identity" or table in views:
                    continue
                cols = identity_cols[table]
                numbers += [f'select cast("{c}" as varchar) as v from identity."{table}"'
                            for c in sorted(cols & {"nhs_number", "nhs_number_l", "nhs_number_r"})]
                names += [f'select cast("{f}" as varchar) as f, cast("{s}" as varchar) as s from identity."{table}"'
                          for f, s in (("forename", "surname"), ("forename_l", "surname_l"), ("forename_r", "surname_r"))
                          if {f, s} <= cols]
            # NHS numbers are read only when a released value holds one (`known_nhs`): there are many
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

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The audit's read-only connection to the warehouse (for the ledger and the reference)."""
        return self._con

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "Zone":
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
        recipient (`pseudonymiser`: the audit's own HMAC, not DuckDB's, which is no faster)."""
        households = "select household_id from linkage.persons"
        if "linkage.household_members" in self.have:
            # a household is an address: one nobody lives at now is in no person's row
            households += " union select household_id from linkage.household_members"
        index = {"person_id": "select person_id from linkage.persons", "household_id": households}.get(column)
        inside = f' and "{column}" in ({index})' if index else ""
        ids = [r[0] for r in self.source_rows(f'select distinct cast("{column}" as varchar) from {source} '
                                              f'where "{column}" is not null{inside} order by 1')]
        hashed = {"id": ids}
        for name, ctx in contexts.items():
            of = pseudonymiser(key, ctx)
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


def forget_read() -> None:
    """Forget the identity schema's names read by `_names`."""
    _names_read.clear()
