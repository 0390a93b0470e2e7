"""The data-quality facts a board pack shows, computed in the secure zone at release time.

The pack is built only from its release, so the release step writes these facts into the
release folder as `data_quality.json`: per controller agency and extract, counts of the
deliveries that arrived in the window (late by the contract's timing rule, as the owner's report
judges it; rejected and why; quarantine above the contract's tolerance), and of the files due by
the release that never arrived (overdue, by the same rule). Agency-level counts only: no file names, no row values, no messages.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.contracts.timing import (
    NoFileDate,
    due_for,
    file_date,
    minutes_late,
    next_file_date,
)
from orchestration.partnership.warehouse.connection import table_exists

DATA_QUALITY_FILE = "data_quality.json"
WINDOW_DAYS = 28
SCHEMA_VERSION = 2
MAX_OVERDUE = 99  # counted up to this many files: a dead feed is not a loop

_EXTRACT_KEYS = {"contract", "extract", "title", "cadence", "due_by", "deliveries", "accepted", "rejected", "overdue",
                 "rejected_reasons", "late", "max_minutes_late", "rows_read", "rows_quarantined",
                 "over_tolerance", "quarantine_tolerance", "rows_suppressed", "rows_rounding_base"}
ROW_COUNTS = ("rows_read", "rows_quarantined")  # counts of records about people: protected in a release
_AGENCY_KEYS = {"agency", "name", "extracts"}
_TOP_KEYS = {"schema_version", "source", "window", "agencies"}


def window(con: duckdb.DuckDBPyConnection, protocol_id: str, release_date: date) -> tuple[date, date]:
    """The days whose arrivals a pack reports: the last WINDOW_DAYS up to the release date,
    reaching further back to the day after the previous published release when that is older."""
    start = release_date - timedelta(days=WINDOW_DAYS - 1)
    if table_exists(con, "ops", "release_log"):
        prev = con.execute(
            """select max(release_date) from ops.release_log
               where protocol_id = ? and status = 'published' and release_date < ?""",
            [protocol_id, release_date],
        ).fetchall()[0][0]
        if prev is not None and prev + timedelta(days=1) < start:
            start = prev + timedelta(days=1)
    return start, release_date


def _agency_name(agency: str, contracts: list[Contract]) -> str:
    for c in contracts:
        if " — " in c.title:
            return c.title.split(" — ")[0].strip()
    return agency.replace("_", " ").title()


def summarise(con: duckdb.DuckDBPyConnection, agencies: list[str], contracts: dict[str, Contract],
              start: date, end: date) -> dict:
    """Counts per agency and extract of the deliveries that arrived from `start` to `end` (local days)."""
    tz = ZoneInfo("Europe/London")
    lo = datetime.combine(start, time(0, 0), tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)
    hi = datetime.combine(end + timedelta(days=1), time(0, 0), tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)
    have = {r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'ops' and table_name = 'deliveries'").fetchall()}
    col = {c: (c if c in have else "null") for c in ("extract", "reason_code", "rows_read", "rows_quarantined", "warnings")}
    rows = con.execute(
        f"""select agency, coalesce(contract_id, ''), coalesce({col['extract']}, ''), file_name, status, coalesce({col['reason_code']}, ''),
                   arrived_at, coalesce({col['rows_read']}, 0), coalesce({col['rows_quarantined']}, 0),
                   coalesce(cast({col['warnings']} as varchar), '[]')
            from ops.deliveries
            where agency in ({", ".join("?" for _ in agencies)}) and arrived_at >= ? and arrived_at < ?
              and status in ('accepted', 'rejected')
            order by agency, contract_id, arrived_at""",
        [*agencies, lo, hi],
    ).fetchall() if agencies and "arrived_at" in have else []  # a table without arrival times has nothing to report

    by_extract: dict[tuple[str, str], dict] = {}
    for agency in agencies:  # every contract of every controller, even with no delivery in the window
        for c in sorted((c for c in contracts.values() if c.agency == agency), key=lambda c: c.id):
            by_extract[(agency, c.id)] = _empty(c.id, c.extract, c)
    for agency, cid, extract, file_name, status, reason_code, arrived, read, quarantined, warnings in rows:
        contract = contracts.get(cid)
        key = (agency, cid or f"(unrecognised {extract or 'file'})")
        e = by_extract.setdefault(key, _empty(key[1], extract or "", contract))
        e["deliveries"] += 1
        if status == "rejected":
            e["rejected"] += 1
            e["rejected_reasons"][reason_code or "unspecified"] = e["rejected_reasons"].get(reason_code or "unspecified", 0) + 1
        else:
            e["accepted"] += 1
            e["rows_read"] += int(read)
            e["rows_quarantined"] += int(quarantined)
            if any(str(w).startswith("quarantine_rate") for w in json.loads(warnings or "[]")):
                e["over_tolerance"] += 1
        late = minutes_late(contract, file_name, arrived, reason_code) if contract is not None else None
        if late is not None:
            e["late"] += 1
            e["max_minutes_late"] = max(e["max_minutes_late"], late)

    # As the freshness check judges a replayed day: at noon of the release day, or now if earlier.
    noon = datetime.combine(end, time(12, 0), tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)
    at = min(noon, datetime.now(timezone.utc).replace(tzinfo=None))
    for (agency, cid), e in by_extract.items():
        if cid in contracts and "arrived_at" in have:  # a table without arrival times has nothing to report
            e["overdue"] = _overdue(con, contracts[cid], at)

    out = []
    for agency in agencies:
        extracts = [v for (a, _), v in sorted(by_extract.items()) if a == agency]
        for e in extracts:
            e["rejected_reasons"] = dict(sorted(Counter(e["rejected_reasons"]).items()))
        out.append({"agency": agency, "name": _agency_name(agency, [c for c in contracts.values() if c.agency == agency]),
                    "extracts": extracts})
    return {
        "schema_version": SCHEMA_VERSION,
        "source": "ops.deliveries (counts per agency and extract; no rows, no file names)",
        "window": {"from": start.isoformat(), "to": end.isoformat(), "timezone": "Europe/London"},
        "agencies": out,
    }


def _overdue(con: duckdb.DuckDBPyConnection, contract: Contract, at: datetime) -> int:
    """How many of the extract's files were due by `at` (UTC) and have not arrived: those after its
    latest accepted file, by its cadence; one when none was ever accepted (it is missing)."""
    names = [r[0] for r in con.execute(
        "select file_name from ops.deliveries where contract_id = ? and status = 'accepted' and arrived_at < ?",
        [contract.id, at]).fetchall()]
    covers = []
    for name in names:
        try:
            covers.append(file_date(contract, name))
        except NoFileDate:
            continue
    covers = [c for c in covers if c is not None]
    if not covers:
        return 1 if not names else 0  # a contract that dates no files has no due time to miss
    n, nxt = 0, next_file_date(contract, max(covers))
    while due_for(contract, nxt) < at and n < MAX_OVERDUE:
        n += 1
        nxt = next_file_date(contract, nxt)
    return n


def _empty(contract_id: str, extract: str, contract: Contract | None) -> dict:
    return {
        "contract": contract_id, "extract": extract,
        "title": contract.title if contract else extract,
        "cadence": contract.delivery.cadence if contract else None,
        "due_by": contract.delivery.due_by if contract else None,
        "deliveries": 0, "accepted": 0, "rejected": 0, "overdue": 0, "rejected_reasons": {},
        "late": 0, "max_minutes_late": 0, "rows_read": 0, "rows_quarantined": 0, "over_tolerance": 0,
        "quarantine_tolerance": contract.quarantine_tolerance if contract else None,
    }


def for_release(con: duckdb.DuckDBPyConnection, protocol_id: str, agencies: list[str],
                contracts: dict[str, Contract], release_date: date) -> dict:
    start, end = window(con, protocol_id, release_date)
    return summarise(con, agencies, contracts, start, end)


def check(doc: dict, rule: dict | None = None) -> list[str]:
    """The audit's reading of a data_quality.json: only the known keys, counts as integers, and its
    row counts (counts of records about people) under the protocol's disclosure `rule`: none from
    `suppress_counts_from` to `_to`, each a multiple of `rounding_base`, empty only when suppressed."""
    problems = []
    if set(doc) != _TOP_KEYS:
        problems.append(f"data_quality.json: keys {sorted(set(doc) ^ _TOP_KEYS)} differ from the expected")
        return problems
    for a in doc["agencies"]:
        if set(a) != _AGENCY_KEYS:
            problems.append(f"data_quality.json: agency keys {sorted(set(a) ^ _AGENCY_KEYS)} differ from the expected")
            continue
        for e in a["extracts"]:
            if set(e) != _EXTRACT_KEYS:
                problems.append(f"data_quality.json: extract keys {sorted(set(e) ^ _EXTRACT_KEYS)} differ from the expected")
                continue
            for k in ("deliveries", "accepted", "rejected", "overdue", "late", "max_minutes_late", "rows_read", "rows_quarantined",
                      "over_tolerance"):
                if e[k] is None and k in ROW_COUNTS and k in (e["rows_suppressed"] or []):
                    continue  # suppressed
                if not isinstance(e[k], int) or isinstance(e[k], bool) or e[k] < 0:
                    problems.append(f"data_quality.json: {e['contract']}.{k} is not a count")
            if rule is not None:
                low, high, base = rule["suppress_counts_from"], rule["suppress_counts_to"], rule["rounding_base"]
                for k in ROW_COUNTS:
                    n = e[k]
                    if isinstance(n, int) and (low <= n <= high or n % base or e["rows_rounding_base"] != base):
                        problems.append(f"data_quality.json: {e['contract']}.{k} is not protected (suppressed from "
                                        f"{low} to {high}, rounded to {base})")
            if not all(isinstance(v, int) for v in e["rejected_reasons"].values()):
                problems.append(f"data_quality.json: {e['contract']}.rejected_reasons holds something other than counts")
    return problems
