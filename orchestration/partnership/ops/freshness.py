"""Freshness: whether each extract's next delivery is overdue, and which deliveries came late.

The timing rule is the contract's (contracts/timing.py); this module applies it to the
deliveries ops.deliveries holds, as at a given time. It names files, never rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.contracts.timing import (
    NEVER_DUE_REASONS,
    NoFileDate,
    due_at,
    due_for,
    file_date,
    is_late,
    minutes_after,
    next_file_date,
)
from orchestration.partnership.settings import Settings, replay_date
from orchestration.partnership.warehouse.connection import connect, table_exists

LATE_WINDOW_DAYS = 35  # late deliveries listed: those that arrived in this many days


@dataclass
class Freshness:
    contract_id: str
    fresh: bool
    latest_file: str | None
    latest_covers: date | None
    next_due: datetime | None  # UTC
    hours_overdue: float
    late: list[dict]  # {file, status, due_utc, arrived_utc, minutes_late}

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
        except NoFileDate:  # a file name without a date was rejected for it; it covers nothing
            continue
        if covers is None:
            continue
        if status == "accepted" and (latest_covers is None or covers > latest_covers):
            latest_name, latest_covers = name, covers
        if is_late(due, arrived) and arrived >= now - timedelta(days=LATE_WINDOW_DAYS):
            late.append({"file": name, "status": status, "due_utc": f"{due:%Y-%m-%d %H:%M}",
                         "arrived_utc": f"{arrived:%Y-%m-%d %H:%M}",
                         "minutes_late": minutes_after(due, arrived)})
    if latest_covers is None:
        return Freshness(contract.id, False, None, None, None, 0.0, late)
    next_due = due_for(contract, next_file_date(contract, latest_covers))
    overdue = max(0.0, (now - next_due).total_seconds() / 3600)
    return Freshness(contract.id, now <= next_due, latest_name, latest_covers, next_due, round(overdue, 1), late)


def evaluation_time() -> datetime:
    """Now, in UTC. A replay judges as at 12:00 London time on its day."""
    replay = replay_date()
    if replay is not None:
        local = datetime.combine(replay, time(12, 0), ZoneInfo("Europe/London"))
        return local.astimezone(timezone.utc).replace(tzinfo=None)
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def deliveries_by_contract(settings: Settings) -> dict[str, list[tuple]]:
    """(file_name, status, arrived_at) of every delivery in ops.deliveries that could be due, by contract, oldest first."""
    if not settings.warehouse_path.exists():
        return {}
    with connect(settings.warehouse_path, read_only=True) as con:
        if not table_exists(con, "ops", "deliveries"):
            return {}
        rows = con.execute(
            "select contract_id, file_name, status, arrived_at from ops.deliveries where contract_id is not null "
            f"and not (status = 'rejected' and coalesce(reason_code, '') in ({', '.join('?' for _ in NEVER_DUE_REASONS)})) "
            "order by arrived_at, delivery_id", list(NEVER_DUE_REASONS)).fetchall()
    out: dict[str, list[tuple]] = {}
    for cid, name, status, arrived in rows:
        out.setdefault(cid, []).append((name, status, arrived))
    return out
