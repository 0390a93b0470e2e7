"""Whom an identifiable release may name as a member of a household: the rule, in one place.

A release that names people (an output with `identifiers`) takes their identity only from the
sources its protocol lists (`identifiers.sources`, each with its legal basis). Placing a person
in a family is a statement about them as much as their name is, so the same sources must place
them there: a member is named only when records of a listed source put them at the family's
address. The supporting-families protocol says so of health records ("not a source of identity
for this protocol"): a person found at the address only by a hospital attendance's address line
or a fire-service visit is not named.

The source table says, per row, which extracts placed its person at the row's household
(`placement_sources`: `linkage.household_members.sources`) and, for a person joined on an
event shared with a member, which extracts' events tied them to that member
(`placement_event_sources`). A row is named when a listed source is among its placement sources
and, for a person joined on an event, among its event sources. A source table without a
`placement_sources` column is not about households, and the rule does not apply to it.

The rows the rule keeps out are not lost: `record_review` lists them, after each release, in
`identity.release_member_review` (protocol, quarter, household, person, the extracts that placed
them, why) for the Early Help team or the operator to check, and the portal's exclusions page
counts them. They are never released as named.
"""

from __future__ import annotations

from datetime import date

import duckdb

from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.warehouse.connection import table_exists

PLACEMENT = "placement_sources"
EVENT = "placement_event_sources"
REVIEW = "release_member_review"


def _columns(con: duckdb.DuckDBPyConnection, source: str) -> set[str]:
    schema, table = source.split(".", 1)
    return {r[0] for r in con.execute("""select column_name from information_schema.columns
                                         where table_schema = ? and table_name = ?""", [schema, table]).fetchall()}


def identity_sources(out: dict) -> list[str]:
    """The contracts the output's protocol takes identity from."""
    return [s["contract"] for s in (out.get("identifiers") or {}).get("sources", [])]


def condition(con: duckdb.DuckDBPyConnection, out: dict) -> tuple[str, list] | None:
    """The SQL condition (alias `s`, `?` parameters) a row must meet to be named, or None when
    the rule does not apply (the output names no one, or its source says nothing of placement)."""
    if not out.get("identifiers") or not table_exists(con, *out["source"].split(".", 1)):
        return None
    cols = _columns(con, out["source"])
    if PLACEMENT not in cols:
        return None
    listed = identity_sources(out)
    sql = f"coalesce(list_has_any(s.{PLACEMENT}, ?::varchar[]), false)"
    params: list = [listed]
    if EVENT in cols:
        sql = f"({sql} and (s.{EVENT} is null or list_has_any(s.{EVENT}, ?::varchar[])))"
        params.append(listed)
    return sql, params


def record_review(con: duckdb.DuckDBPyConnection, protocol: Protocol, release_date: date) -> int:
    """Replace the protocol's rows of `identity.release_member_review` with the rows its outputs'
    other filters allow but the placement rule keeps from being named; returns how many. `con`
    writes (inside the caller's transaction, if any)."""
    from orchestration.partnership.releases.scope import row_conditions

    con.execute("create schema if not exists identity")
    con.execute(f"""create table if not exists identity.{REVIEW} (
        protocol_id varchar, output_table varchar, release_date date, period_start date, household_id varchar,
        person_id varchar, placement_sources varchar[], placement_event_sources varchar[], reason varchar)""")
    con.execute(f"delete from identity.{REVIEW} where protocol_id = ?", [protocol.id])
    held = 0
    for out in protocol.outputs:
        rule = condition(con, out)
        if rule is None:
            continue
        clauses, params = row_conditions(out)
        where = " and ".join([*clauses, f"not ({rule[0]})"])
        cols = _columns(con, out["source"])
        person = out["identifiers"]["person_column"]
        events = f"s.{EVENT}" if EVENT in cols else "cast(null as varchar[])"
        period = "s.period_start" if "period_start" in cols else "cast(null as date)"
        household = "cast(s.household_id as varchar)" if "household_id" in cols else "cast(null as varchar)"
        held += con.execute(f"""insert into identity.{REVIEW}
            select ?, ?, ?, {period}, {household}, cast(s."{person}" as varchar), s.{PLACEMENT}, {events},
                   'no record of the protocol''s identity sources places them at the household (placed by: '
                   || coalesce(nullif(array_to_string(s.{PLACEMENT}, ', '), ''), 'nothing')
                   || coalesce('; joined on an event of ' || array_to_string({events}, ', '), '') || ')'
            from {out['source']} s where {where}""",
            [protocol.id, out["table"], release_date, *params, *rule[1]]).fetchall()[0][0]
    return held
