"""The audit's check that an identifiable release names a household member only when a source of
identity under its protocol places them there.

Read from the linkage's own statement of who lives where (`linkage.household_members`: each
spell's `sources`, and `event_sources` for a person joined on an event shared with a member), not
from the column the builder filtered on: every named row's person must have a spell at the row's
household covering its quarter's last day whose sources include a contract the protocol lists
under `identifiers.sources` (and, joined on an event, whose event sources do too).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from orchestration.partnership.releases.audit.zone import Zone
from orchestration.partnership.releases.protocols import Protocol


def _quarter_end(d: date) -> date:
    month = d.month + 3
    return date(d.year + (month - 1) // 12, (month - 1) % 12 + 1, 1) - timedelta(days=1)


def check_placement(protocol: Protocol, out: dict, df: pl.DataFrame, zone: Zone | None, key: bytes | None,
                    problems: list[str]) -> None:
    ids = out.get("identifiers")
    pseudonyms = out.get("pseudonyms") or {}
    person = next((c for c, s in pseudonyms.items() if s == "person_id"), None)
    household = next((c for c, s in pseudonyms.items() if s == "household_id"), None)
    if not ids or person is None or household is None or "period_start" not in df.columns or df.height == 0:
        return
    if zone is None or key is None or "linkage.household_members" not in zone.have:
        problems.append(f"{out['table']}: who placed each named member at their household cannot be verified "
                        "without the warehouse's household members and the key")
        return
    if not zone.source_rows("""select count(*) from information_schema.columns where table_schema = 'linkage'
                               and table_name = 'household_members' and column_name = 'sources'""")[0][0]:
        problems.append(f"{out['table']}: linkage.household_members does not say which sources placed each member")
        return
    ctx = protocol.pseudonym_context
    people = dict(zone.hashed_ids(out["source"], "person_id", key, {"mine": ctx}).select("mine", "id").iter_rows())
    homes = dict(zone.hashed_ids(out["source"], "household_id", key, {"mine": ctx}).select("mine", "id").iter_rows())
    rows = df.select(household, person, "period_start").unique().rows()
    listed = sorted(s["contract"] for s in ids["sources"])
    named = [(homes.get(h), people.get(p), _quarter_end(d)) for h, p, d in rows]
    unplaced = zone.source_rows("""
        with r as (select unnest(?::varchar[]) as household_id, unnest(?::varchar[]) as person_id,
                          unnest(?::date[]) as day)
        select count(*) from r where not exists (
            select 1 from linkage.household_members m
            where m.household_id = r.household_id and m.person_id = r.person_id
              and (m.valid_from is null or m.valid_from <= r.day) and (m.valid_to is null or r.day <= m.valid_to)
              and list_has_any(m.sources, ?::varchar[])
              and (m.event_sources is null or list_has_any(m.event_sources, ?::varchar[])))""",
        [[h for h, _, _ in named], [p for _, p, _ in named], [d for _, _, d in named], listed, listed])[0][0]
    if unplaced:
        problems.append(f"{out['table']}: {unplaced} named members are not placed at their household on the quarter's "
                        f"last day by a source of identity the protocol lists ({', '.join(listed)})")
