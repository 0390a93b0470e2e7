"""The hold-back rule: while an extract's latest delivery stands rejected, everything downstream
of it keeps its last good state and no release is built on it, until an accepted delivery follows.

The night's dbt build and every release read the rule from here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.dbt.runner import downstream
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import connect


def standing_rejections(con) -> dict[str, list[str]]:
    """Rejected deliveries not yet followed by an accepted one of the same extract, on an open
    connection: contract -> reasons, oldest first. A duplicate does not hold anything back."""
    out: dict[str, list[str]] = {}
    for contract_id, reason in con.execute(
            """select contract_id, reason from ops.deliveries d
               where contract_id is not null and status = 'rejected' and reason_code <> 'duplicate'
                 and not exists (select 1 from ops.deliveries a where a.contract_id = d.contract_id
                                 and a.status = 'accepted' and a.arrived_at > d.arrived_at)
               order by contract_id, arrived_at""").fetchall():
        out.setdefault(contract_id, []).append(reason)
    return out


def all_blocking_rejections(settings: Settings) -> dict[str, list[str]]:
    """`standing_rejections` of every extract that has any, read on one connection."""
    with connect(settings.warehouse_path, read_only=True) as con:
        return standing_rejections(con)


def blocking_rejections(settings: Settings, contract_id: str) -> list[str]:
    """The rejections standing against one extract (empty: nothing of it is held back)."""
    return all_blocking_rejections(settings).get(contract_id, [])


def held_extracts(settings: Settings, contracts: Mapping[str, Contract]) -> dict[str, list[str]]:
    """The contracted extracts held back now: contract id -> standing rejection reasons, by id."""
    standing = all_blocking_rejections(settings)
    return {cid: standing[cid] for cid in sorted(contracts) if standing.get(cid)}


@dataclass(frozen=True)
class DbtHoldBack:
    """What the night's dbt build leaves out: `exclude_args` for `dbt build`, and the unique ids
    of every node downstream of a held extract's valid source (they keep their last build)."""

    exclude_args: list[str]
    nodes: set[str]


def dbt_hold_back(manifest: dict, held: Iterable[str]) -> DbtHoldBack:
    """The dbt selection that excludes everything downstream of the `held` extracts."""
    held = sorted(held)
    if not held:
        return DbtHoldBack([], set())
    roots = [uid for uid, s in manifest["sources"].items() if s["source_name"] == "valid" and s["name"] in held]
    return DbtHoldBack(["--exclude", " ".join(f"source:valid.{cid}+" for cid in held)], downstream(manifest, roots))


def protocol_hold_back(protocol: Protocol, contracts: Mapping[str, Contract],
                       held: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The held extracts that hold this protocol's release back: those of its controllers."""
    controllers = protocol.doc["controllers"]
    return {cid: reasons for cid, reasons in sorted(held.items())
            if cid in contracts and contracts[cid].agency in controllers}
