"""The audit's checks of each table's columns and rows: exactly the protocol's columns, rows
inside its filters (cells, age, cohort, area, values), values no finer than its generalisation,
and no exact date in person-level rows."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime

import polars as pl

from orchestration.partnership.releases.audit.zone import Zone
from orchestration.partnership.releases.protocols import Protocol

FORMS = {
    "lsoa": re.compile(r"^E01[0-9]{6}$"),
    "ward": re.compile(r"^E05[0-9]{6}$"),
    "age_band_5y": re.compile(r"^(?:([0-9]{1,2})-([0-9]{1,2})|90\+)$"),
}


def allowed_columns(protocol: Protocol, out: dict) -> list[str]:
    """The columns a table of the protocol holds: its own, and disclosure control's flags for an aggregate."""
    cols = []
    counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
    for c in out["columns"]:
        cols.append(c)
        if protocol.level == "aggregate" and c in counts:
            cols += [f"{c}_suppressed", f"{c}_rounding_base"]
    if protocol.level == "aggregate" and derived:
        cols.append("derived_withheld")
    return cols


def check_columns_and_rows(protocol: Protocol, out: dict, df: pl.DataFrame, zone: Zone | None, problems: list[str]) -> None:
    t = out["table"]
    for key, allowed in (out.get("row_filters") or {}).items():
        if key == "cells":
            ok = pl.lit(False)
            for cell in allowed:
                ok = ok | pl.all_horizontal([pl.col(k) == v for k, v in cell.items()])
            bad = df.filter(~ok).height
            if bad:
                problems.append(f"{t}: {bad} rows outside the allowed cells")
        elif key == "age":
            if allowed["column"] not in df.columns:
                problems.append(f"{t}: the age filter's column {allowed['column']} is not released, so it cannot be verified")
            elif (bad := df.filter(~pl.col(allowed["column"]).is_in(allowed["values"])).height):
                problems.append(f"{t}: {bad} rows outside the age filter on {allowed['column']}")
        elif key == "cohort":
            if allowed["column"] in df.columns:
                bad = df.filter(pl.col(allowed["column"]) != allowed.get("equals", True)).height
                if bad:
                    problems.append(f"{t}: {bad} rows outside the cohort")
        elif key == "geography":
            col, within = allowed["column"], set(allowed["within"])
            if col not in df.columns:
                problems.append(f"{t}: the geography filter's column {col} is not released, so it cannot be verified")
                continue
            if zone is None or not zone.ward_district:
                problems.append(f"{t}: the geography filter cannot be verified without the reference geography")
                continue

            def inside(code: str | None) -> bool:
                if code is None:
                    return False
                chain = [code]
                if allowed["level"] == "lsoa":
                    chain.append(zone.lsoa_ward.get(code))
                if allowed["level"] in ("lsoa", "ward"):
                    chain.append(zone.ward_district.get(chain[-1]))
                return any(c in within for c in chain if c)

            bad = sum(n for v, n in Counter(df[col].to_list()).items() if not inside(v))
            if bad:
                problems.append(f"{t}: {bad} rows outside the area {sorted(within)} on {col}")
        else:
            if key not in df.columns:
                problems.append(f"{t}: the row filter's column {key} is not released, so it cannot be verified")
            elif (bad := df.filter(~pl.col(key).is_in(allowed) | pl.col(key).is_null()).height):
                problems.append(f"{t}: {bad} rows outside the row filter on {key}")
    for col, form in (out.get("generalisation") or {}).items():
        values = Counter(v for v in df[col].to_list() if v is not None)  # each distinct value checked once
        if form in ("month", "quarter"):
            bad = sum(n for v, n in values.items() if not isinstance(v, date) or isinstance(v, datetime) or v.day != 1
                      or (form == "quarter" and v.month not in (1, 4, 7, 10)))
        elif form == "age_band_5y":
            def band_ok(v) -> bool:
                m = FORMS["age_band_5y"].match(str(v))
                return bool(m) and (m.group(1) is None or int(m.group(2)) - int(m.group(1)) == 4)
            bad = sum(n for v, n in values.items() if not band_ok(v))
        else:
            bad = sum(n for v, n in values.items() if not FORMS[form].match(str(v)))
        if bad:
            problems.append(f"{t}.{col}: {bad} values finer than {form}")
    if protocol.level != "aggregate":
        gen = out.get("generalisation") or {}
        for col, dtype in df.schema.items():
            if dtype == pl.Datetime or (dtype == pl.Date and col not in gen and col not in (out.get("identifiers") or {}).get("columns", {})):
                problems.append(f"{t}.{col}: an exact date or time in person-level rows (not generalised by the protocol)")
