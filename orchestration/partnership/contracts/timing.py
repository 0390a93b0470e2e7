"""When a delivery is due and whether it came late: the one rule the engine, the freshness check,
the owner reports and the board pack share.

A contract's `delivery` says which day a file covers (the last yyyyMMdd in its name, when
`fileDate` is set), when it is due (`dueBy` local time in the contract's `timezone`,
`dueAfterDays` after that day) and how often the next one comes (`cadence`). Times are UTC and
naive, as ops.deliveries stores them.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from orchestration.partnership.contracts.model import Contract

# Rejected for these before its time was judged (at registration, for a name without its date,
# or gone or changing before it was read), a file was never due, so never late.
NEVER_DUE_REASONS = ("symlink", "not_a_file", "file_name", "missing", "changed")
_DATE_TOKEN = re.compile(r"(?<![0-9])([0-9]{8})(?![0-9])")


class NoFileDate(ValueError):
    """The contract needs a date in the file name and this one carries none; the message is safe to show."""


def file_date(contract: Contract, file_name: str) -> date | None:
    """The day the file covers: the last yyyyMMdd in its name; None when the contract dates no files."""
    if contract.delivery.file_date is None:
        return None
    for token in reversed(_DATE_TOKEN.findall(file_name)):
        try:
            return datetime.strptime(token, "%Y%m%d").date()
        except ValueError:
            continue
    raise NoFileDate(f"{file_name}: the file name carries no date (yyyyMMdd); the contract needs it to know "
                     "which day the delivery covers")


def due_for(contract: Contract, covers: date) -> datetime:
    """When the file covering `covers` is due, in UTC: `dueBy` local time, `dueAfterDays` later."""
    hh, mm = (int(x) for x in contract.delivery.due_by.split(":"))
    local = datetime.combine(covers + timedelta(days=contract.delivery.due_after_days), time(hh, mm),
                             ZoneInfo(contract.delivery.timezone))
    return local.astimezone(timezone.utc).replace(tzinfo=None)


def due_at(contract: Contract, file_name: str) -> datetime | None:
    """When the delivery `file_name` is due, in UTC; None when the contract dates no files.
    Raises NoFileDate when the contract needs a date the name does not carry."""
    covers = file_date(contract, file_name)
    return None if covers is None else due_for(contract, covers)


def is_late(due: datetime | None, arrived: datetime) -> bool:
    """Late: it arrived after its due time (a delivery with no due time is never late)."""
    return due is not None and arrived > due


def minutes_late(contract: Contract, file_name: str, arrived: datetime, reason_code: str | None = None) -> int | None:
    """Whole minutes after its due time that the delivery arrived; None when it was not late,
    including a file rejected with a reason in NEVER_DUE_REASONS (it was never due)."""
    if reason_code in NEVER_DUE_REASONS:
        return None
    try:
        due = due_at(contract, file_name)
    except NoFileDate:
        return None
    return minutes_after(due, arrived) if is_late(due, arrived) else None


def minutes_after(due: datetime, arrived: datetime) -> int:
    """Whole minutes from the due time to the arrival."""
    return int((arrived - due).total_seconds() // 60)


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def next_file_date(contract: Contract, latest: date) -> date:
    """The day the next file should cover, after one covering `latest`, by the contract's cadence."""
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
