"""A release's outcome for the night, as it happened, said one way everywhere.

`published` and `unchanged` (the recipient has current data), `not_in_force` (the protocol
allows nothing tonight), and three outcomes that leave the recipient without fresh data, its
last release standing: `held_back` (an extract the release reads stands rejected, or was left
unprocessed by a failed step: the extracts and deliveries are named), `blocked` (the audit or
a missing source stopped it) and `failed` (the release step itself failed). Each is logged in
`ops.release_log` and the night's JSON report with the same reason the run's log, the console,
the operator's alert and `partnership releases` show."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from orchestration.partnership.releases import log as release_log
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.releases.publish import ReleaseResult, record_report
from orchestration.partnership.warehouse.connection import connect

STATUSES = ("published", "unchanged", "held_back", "blocked", "not_in_force", "failed")
NOT_FRESH = ("held_back", "blocked", "failed")  # the recipient did not get tonight's data


def no_fresh_data(protocol: Protocol) -> str:
    return f"{protocol.doc['recipient']['name']} did not get fresh data; its last release stands"


def held_back_reason(protocol: Protocol, held: dict[str, list[str]]) -> str:
    """Why a release is held back: who goes without, and each held extract with what holds it."""
    extracts = "; ".join(f"{cid} ({' / '.join(reasons)})" for cid, reasons in sorted(held.items()))
    return f"{no_fresh_data(protocol)}: held back by {extracts}"


def failed_reason(protocol: Protocol, exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{no_fresh_data(protocol)}: the release step failed ({type(exc).__name__}: {first}); nothing was published"


def record(warehouse: Path, reports_dir: Path, protocol: Protocol, release_date: date, status: str, reason: str,
           run_id: str | None = None) -> ReleaseResult:
    """Log an outcome that published nothing (`held_back`, `failed`, `blocked` before building) and add it to
    the night's report."""
    assert status in ("held_back", "failed", "blocked"), status
    result = ReleaseResult(protocol.id, status, reason=reason)
    try:
        with connect(warehouse) as con:
            release_log.append(con, protocol, release_date, status, None, None, reason)
    finally:  # a warehouse that cannot be written (the failure itself, perhaps): the report still says it
        record_report(reports_dir, release_date, result, run_id)
    return result
