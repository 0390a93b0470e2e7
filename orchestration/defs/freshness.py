"""Freshness as an asset check of each extract's `valid` asset: the rule and its assessment live in
the domain (contracts/timing.py, ops/freshness.py); this file only declares the check.

The check fails (warning) when the next file after the latest accepted one is overdue, and
lists the deliveries that arrived after their due time. It names files, never rows.
"""

from functools import lru_cache

import dagster as dg

from orchestration.defs.ingestion.assets import extract_key
from orchestration.partnership.catalogue import contracts
from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.ops.freshness import (
    LATE_WINDOW_DAYS,
    assess_freshness,
    deliveries_by_contract,
    evaluation_time,
)
from orchestration.partnership.settings import get_settings

CHECK_NAME = "delivery_freshness"


def _check_key(contract: Contract) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(extract_key(contract), CHECK_NAME)


@lru_cache(maxsize=1)
def freshness_checks() -> list[dg.AssetChecksDefinition]:
    by_key = {_check_key(c): c for c in contracts().values()}

    @dg.multi_asset_check(
        name="delivery_freshness_checks",
        specs=[dg.AssetCheckSpec(CHECK_NAME, asset=extract_key(c),
                                 description=f"A {c.delivery.cadence} delivery, due by {c.delivery.due_by} "
                                             f"{c.delivery.timezone} {c.delivery.due_after_days} day(s) after the "
                                             "date it covers: the next one is not overdue; late arrivals listed.")
               for c in contracts().values()],
        can_subset=True,
    )
    def _checks(context: dg.AssetCheckExecutionContext):
        now = evaluation_time()
        deliveries = deliveries_by_contract(get_settings())
        for key in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()):
            contract = by_key[key]
            f = assess_freshness(contract, deliveries.get(contract.id, []), now)
            context.log.info(f.summary)
            yield dg.AssetCheckResult(
                asset_key=key.asset_key, check_name=CHECK_NAME, passed=f.fresh, severity=dg.AssetCheckSeverity.WARN,
                description=f.summary,
                metadata={
                    "latest_accepted_file": f.latest_file or "none",
                    "latest_covers": str(f.latest_covers or ""),
                    "next_due_utc": f"{f.next_due:%Y-%m-%d %H:%M}" if f.next_due else "",
                    "hours_overdue": f.hours_overdue,
                    "late_deliveries": len(f.late),
                    "late": dg.MetadataValue.md(
                        "| file | status | due (UTC) | arrived (UTC) | minutes late |\n|---|---|---|---|---|\n"
                        + "\n".join(f"| {x['file']} | {x['status']} | {x['due_utc']} | {x['arrived_utc']} | {x['minutes_late']} |"
                                    for x in f.late)
                        if f.late else f"none in the last {LATE_WINDOW_DAYS} days"),
                },
            )

    return [_checks]
