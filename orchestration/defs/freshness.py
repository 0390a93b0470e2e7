"""Freshness: each extract's delivery SLA, from its contract, as an asset check of its `valid` asset.

A contract says how often a file comes (`cadence`), which day it covers (the date in its file
name) and when it is due (`dueBy` local time, `dueAfterDays` after that date). The check fails
(warning) when the next file after the latest accepted one is overdue, and lists the deliveries
that arrived after their due time. It names files, never rows.
"""

import calendar
import os
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import dagster as dg

from orchestration.defs.catalogue import contracts
from orchestration.defs.ingestion.assets import extract_key
from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.settings import get_settings
from orchestration.partnership.validation.engine import due_at, file_date
from orchestration.partnership.warehouse.connection import connect, table_exists

CHECK_NAME = "delivery_freshness"
LATE_WINDOW_DAYS = 35  # late deliveries listed: those that arrived in this many days


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def next_file_date(contract: Contract, latest: date) -> date:
    """The date the next file should cover, by the contract's cadence."""
    cadence = contract.delivery.cadence
    if cadence == "nightly":
        return latest + timedelta(days=1)
    if cadence == "weekly":
        return latest + timedelta(days=7)
    if cadence == "monthly":
        return _add_months(latest, 1)
    if cadence == "termly":  # three terms a year: the next snapshot within four months
        return _add_months(latest, 4)
    raise ValueError(f"{contract.id}: unknown delivery cadence {cadence!r}")


def _due(contract: Contract, covers: date) -> datetime:
    hh, mm = (int(x) for x in contract.delivery.due_by.split(":"))
    local = datetime.combine(covers + timedelta(days=contract.delivery.due_after_days), time(hh, mm),
                             ZoneInfo(contract.delivery.timezone))
    return local.astimezone(timezone.utc).replace(tzinfo=None)


@dataclass
class Freshness:
    contract_id: str
    fresh: bool
    latest_file: str | None
    latest_covers: date | None
    next_due: datetime | None  # UTC
    hours_overdue: float
    late: list[dict]  # {file, due, arrived, minutes_late, status}

    @property
    def summary(self) -> str:
        if self.latest_file is None:
            return f"{self.contract_id}: no delivery accepted yet"
        state = "on time" if self.fresh else f"OVERDUE by {self.hours_overdue:.1f} h"
        return (f"{self.contract_id}: latest accepted {self.latest_file} (covers {self.latest_covers}); "
                f"next due by {self.next_due:%Y-%m-%d %H:%M} UTC: {state}")


def assess_freshness(contract: Contract, deliveries: list[tuple], now: datetime) -> Freshness:
    """`deliveries`: (file_name, status, arrived_at UTC) of one extract; `now`: UTC, naive."""
    latest_name, latest_covers = None, None
    late = []
    for name, status, arrived in deliveries:
        try:
            covers = file_date(contract, name)
            due = due_at(contract, name)
        except Exception:  # a file name without a date was rejected for it; it covers nothing
            continue
        if covers is None:
            continue
        if status == "accepted" and (latest_covers is None or covers > latest_covers):
            latest_name, latest_covers = name, covers
        if due is not None and arrived > due and arrived >= now - timedelta(days=LATE_WINDOW_DAYS):
            late.append({"file": name, "status": status, "due_utc": f"{due:%Y-%m-%d %H:%M}",
                         "arrived_utc": f"{arrived:%Y-%m-%d %H:%M}",
                         "minutes_late": int((arrived - due).total_seconds() // 60)})
    if latest_covers is None:
        return Freshness(contract.id, False, None, None, None, 0.0, late)
    next_due = _due(contract, next_file_date(contract, latest_covers))
    overdue = max(0.0, (now - next_due).total_seconds() / 3600)
    return Freshness(contract.id, now <= next_due, latest_name, latest_covers, next_due, round(overdue, 1), late)


def evaluation_time() -> datetime:
    """Now, in UTC. A replay (`PARTNERSHIP_RUN_DATE`) judges as at 12:00 London time on that day."""
    replay = os.environ.get("PARTNERSHIP_RUN_DATE")
    if replay:
        local = datetime.combine(date.fromisoformat(replay), time(12, 0), ZoneInfo("Europe/London"))
        return local.astimezone(timezone.utc).replace(tzinfo=None)
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def _deliveries_by_contract() -> dict[str, list[tuple]]:
    settings = get_settings()
    if not settings.warehouse_path.exists():
        return {}
    with connect(settings.warehouse_path, read_only=True) as con:
        if not table_exists(con, "ops", "deliveries"):
            return {}
        rows = con.execute("select contract_id, file_name, status, arrived_at from ops.deliveries "
                           "where contract_id is not null order by arrived_at, delivery_id").fetchall()
    out: dict[str, list[tuple]] = {}
    for cid, name, status, arrived in rows:
        out.setdefault(cid, []).append((name, status, arrived))
    return out


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
        deliveries = _deliveries_by_contract()
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
