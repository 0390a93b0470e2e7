"""Which day a night may run as.

A night runs as today unless `PARTNERSHIP_RUN_DATE` says otherwise (replays, tests). A run
date before the latest accepted delivery would date releases before data they hold (and judge
protocols in force that have expired): it is refused, unless the operator asks for a rebuild
as of that day explicitly (`partnership run --rebuild`, which sets `PARTNERSHIP_REBUILD=1`
for that night). Even then, the release audit blocks any release holding a date after its
release date.
"""

from __future__ import annotations

import os
from datetime import date, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from orchestration.partnership.warehouse.connection import connect, table_exists

REBUILD_ENV = "PARTNERSHIP_REBUILD"
LONDON = ZoneInfo("Europe/London")


class RunDateError(RuntimeError):
    """The run date is before the latest accepted delivery, and no rebuild was asked for."""


def rebuild_asked() -> bool:
    return os.environ.get(REBUILD_ENV, "").strip().lower() in ("1", "true", "yes")


def latest_accepted(warehouse: Path) -> tuple[date, str] | None:
    """The day (Europe/London) the latest accepted delivery arrived, and its file name."""
    if not Path(warehouse).exists():
        return None
    with connect(warehouse, read_only=True) as con:
        if not table_exists(con, "ops", "deliveries"):
            return None
        row = con.execute("""select arrived_at, file_name from ops.deliveries where status = 'accepted'
                             order by arrived_at desc, delivery_id desc limit 1""").fetchall()
    if not row:
        return None
    arrived, name = row[0]
    return arrived.replace(tzinfo=timezone.utc).astimezone(LONDON).date(), name


def check_run_date(warehouse: Path, day: date, rebuild: bool | None = None) -> None:
    """Raise RunDateError when `day` is before the day the latest accepted delivery arrived."""
    latest = latest_accepted(warehouse)
    if latest is None or day >= latest[0] or (rebuild_asked() if rebuild is None else rebuild):
        return
    raise RunDateError(
        f"the run date {day.isoformat()} (PARTNERSHIP_RUN_DATE) is before the latest accepted delivery "
        f"({latest[1]}, arrived {latest[0].isoformat()}): releases dated then would hold data from after it. "
        f"Nothing was run. Unset PARTNERSHIP_RUN_DATE, or rebuild as of that day on purpose with "
        f"`partnership run --rebuild` ({REBUILD_ENV}=1); even then no release holds data after its date.")
