"""The hold-back rule: while an extract's latest delivery stands rejected, or a delivery of it
was left unprocessed by a failed ingest step, no release that reads the extract is built (its
last release stands) until an accepted delivery follows. Which releases read which extracts is
the release lineage (`releases/lineage.py`: the dbt manifest's lineage and the protocols'
outputs, indicator filters and controllers), so one agency's bad file holds back only the
releases sharing its data, though every indicator is in one mart.

dbt holds nothing back: a rejected or unprocessed delivery loads nothing, so the extract's
`valid` rows are its last accepted ones and every model builds on them; a model shared by many
releases (the indicator mart, the person events) is built for the releases that are not held.

The night's release assets and the CLI read the rule from here."""

from __future__ import annotations

from collections.abc import Mapping

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.releases.lineage import Lineage
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import connect

UNPROCESSED = ": not processed (the ingest step of its extract failed); the next run processes it"


def standing_rejections(con) -> dict[str, list[str]]:
    """What holds each extract back, on an open connection: contract -> reasons, oldest first.

    A rejected delivery not yet followed by an accepted one of the same extract (a duplicate
    holds nothing back); and a delivery still registered once its extract's step has run, which
    that step failed to process, until a run processes it."""
    out: dict[str, list[str]] = {}
    for contract_id, reason in con.execute(
            """select contract_id, reason from (
                  select contract_id, reason, arrived_at from ops.deliveries d
                  where contract_id is not null and status = 'rejected' and reason_code <> 'duplicate'
                    and not exists (select 1 from ops.deliveries a where a.contract_id = d.contract_id
                                    and a.status = 'accepted' and a.arrived_at > d.arrived_at)
                  union all
                  select contract_id, file_name || ?, arrived_at from ops.deliveries
                  where contract_id is not null and status = 'registered')
               order by contract_id, arrived_at""", [UNPROCESSED]).fetchall():
        out.setdefault(contract_id, []).append(reason)
    return out


def all_blocking_rejections(settings: Settings) -> dict[str, list[str]]:
    """`standing_rejections` of every extract that has any, read on one connection."""
    with connect(settings.warehouse_path, read_only=True) as con:
        return standing_rejections(con)


def blocking_rejections(settings: Settings, contract_id: str) -> list[str]:
    """What stands against one extract (empty: nothing of it is held back)."""
    return all_blocking_rejections(settings).get(contract_id, [])


def held_extracts(settings: Settings, contracts: Mapping[str, Contract]) -> dict[str, list[str]]:
    """The contracted extracts held back now: contract id -> what holds each, by id."""
    standing = all_blocking_rejections(settings)
    return {cid: standing[cid] for cid in sorted(contracts) if standing.get(cid)}


def protocol_hold_back(protocol: Protocol, lineage: Lineage, held: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The held extracts that hold this protocol's release back: those its release reads."""
    return lineage.held_back(dict(held)).get(protocol.id, {})
