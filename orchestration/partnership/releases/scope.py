"""Scoping: which rows and columns of the warehouse a protocol's outputs may hold, as SQL.

Row filters, consent and opt-out rules, generalisation and the protocol's named identifiers
(of members placed at their household by the protocol's identity sources: `placement`),
read from the secure zone before any pseudonym is made or disclosure control applied; and the
errors that stop a release before anything is written (`ReleaseBlocked`, `SourceMissing`).
"""

from __future__ import annotations

import duckdb

from orchestration.partnership.releases import placement
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.warehouse.connection import table_exists


class ReleaseBlocked(RuntimeError):
    """The audit found the built output breaks its protocol. Nothing was published."""


class SourceMissing(ReleaseBlocked):
    """A table the protocol reads from is not in the warehouse (not built yet). Nothing was published."""



def quote(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def row_conditions(out: dict) -> tuple[list[str], list]:
    """SQL conditions (on alias `s`) and their parameters (`?`) for the output's row filters, consent
    and opt-out rules: the only place a release's rows are filtered."""
    clauses, params = [], []
    for key, allowed in (out.get("row_filters") or {}).items():
        if key == "cells":
            ors = []
            for cell in allowed:
                ors.append("(" + " and ".join(f"s.{quote(k)} = ?" for k in cell) + ")")
                params += list(cell.values())
            clauses.append("(" + " or ".join(ors) + ")")
        elif key == "geography":
            col, within = f"s.{quote(allowed['column'])}", list(allowed["within"])
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
            clauses.append(f"s.{quote(allowed['column'])} in (" + ", ".join("?" for _ in allowed["values"]) + ")")
            params += list(allowed["values"])
        elif key == "cohort":
            clauses.append(f"s.{quote(allowed['column'])} = ?")
            params.append(allowed.get("equals", True))
        else:
            clauses.append(f"s.{quote(key)} in (" + ", ".join("?" for _ in allowed) + ")")
            params += list(allowed)
    for rule in out.get("consent") or []:
        agencies = rule["agencies"]
        clauses.append(f"(s.{quote(rule.get('agency_column', 'agency'))} not in ({', '.join('?' for _ in agencies)}) "
                       f"or s.{quote(rule['column'])} is true)")
        params += agencies
    oo = out.get("opt_out")
    if oo:
        person = f"s.{quote(oo['person_column'])}"
        agencies = oo["health_derived_agencies"]
        health = [f"s.{quote(oo.get('agency_column', 'agency'))} in ({', '.join('?' for _ in agencies)})"]
        params += agencies
        if oo.get("health_derived_column"):
            health.append(f"coalesce(s.{quote(oo['health_derived_column'])}, true)")
        scope = "true" if oo.get("applies_to_all_rows") else "(" + " or ".join(health) + ")"
        # An unknown person might be opted out: their health-derived rows do not leave either.
        clauses.append(f"not ({scope} and ({person} is null or exists "
                       f"(select 1 from linkage.persons p where p.person_id = {person} and p.opted_out)))")
    return clauses, params


_GENERALISE_SQL = {"month": "cast(date_trunc('month', {c}) as date)", "quarter": "cast(date_trunc('quarter', {c}) as date)"}


def _identity_sql(con: duckdb.DuckDBPyConnection, ids: dict, persons: str) -> str:
    """The latest identity of each person of `persons` (SQL selecting person ids), from the listed
    sources only (identity schema, else valid). Only those persons' records are read and ranked:
    the release names a cohort, a small part of everyone linked."""
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
                fields.append(f"cast(i.{quote(field)} as varchar) as {quote(field)}")
            elif field in valid_cols:
                fields.append(f"cast(v.{quote(field)} as varchar) as {quote(field)}")
            else:
                fields.append(f"cast(null as varchar) as {quote(field)}")
        parts.append(f"""select r.person_id, r.delivery_id, r.row_number, '{c}' as contract_id, {", ".join(fields)}
            from linkage.person_records r
            join identity.{quote(c)} i on i._delivery_id = r.delivery_id and i._row_number = r.row_number
            join valid.{quote(c)} v on v._delivery_id = r.delivery_id and v._row_number = r.row_number
            where r.contract_id = '{c}' and r.person_id in ({persons})""")
    if not parts:
        raise SourceMissing("none of the protocol's identity sources is in the warehouse")
    return f"""select * exclude (rn) from (
        select *, row_number() over (partition by person_id order by delivery_id desc, row_number desc, contract_id) as rn
        from ({" union all ".join(parts)})) where rn = 1"""


def scoped_select(con: duckdb.DuckDBPyConnection, protocol: Protocol, out: dict, key: bytes | None) -> tuple[str, dict]:
    """The SQL (and its named parameters) of one output's rows before disclosure control: allowed
    rows and columns, generalised, identified only as the protocol names, unordered. Pseudonym
    columns hold the value they are made from: pseudonyms are made in one place, `build.from_scoped`
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
            select.append(f"cast(s.{quote(pseudonyms[c])} as varchar) as {quote(c)}")
        elif c in id_cols:
            select.append(f"ident.{quote(id_cols[c])} as {quote(c)}")
        elif gen.get(c) in _GENERALISE_SQL:
            select.append(_GENERALISE_SQL[gen[c]].format(c=f"s.{quote(c)}") + f" as {quote(c)}")
        else:
            select.append(f"s.{quote(c)}")
    clauses, wparams = row_conditions(out)
    placed = placement.condition(con, out)  # named only when placed at the household by an identity source
    if placed is not None:
        clauses.append(placed[0])
        wparams += placed[1]
    # named parameters throughout (the pads `build.from_scoped` binds are named too)
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
        person = quote(ids["person_column"])
        # identities of the persons of the allowed rows only (the same filters, the same parameters)
        persons = f"select s.{person} from {out['source']} s{where}"
        join = f" left join ({_identity_sql(con, ids, persons)}) ident on ident.person_id = s.{person}"
    return f"select {', '.join(select)} from {out['source']} s{join}{where}", named


def person_level(out: dict) -> bool:
    """The output holds rows of people (pseudonyms or named identifiers), not counts."""
    return bool(out.get("pseudonyms") or out.get("identifiers"))


def scope_once(con: duckdb.DuckDBPyConnection, protocol: Protocol, key: bytes | None) -> dict[str, str]:
    """The scoped rows of each person-level output (`scoped_select`: pseudonym columns hold the
    ids they are made from), read once into a temporary table of this connection (in memory, gone
    when it closes), which the fingerprint and the build then both read: the identity join and
    row filters run once instead of twice. Output table -> temporary table."""
    scoped = {}
    for i, out in enumerate(protocol.outputs):
        if person_level(out):
            sql, named = scoped_select(con, protocol, out, key)
            con.execute(f"create or replace temp table _scoped_{i} as {sql}", named)
            scoped[out["table"]] = f"temp.main._scoped_{i}"
    return scoped
