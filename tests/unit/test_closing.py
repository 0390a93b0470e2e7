"""Closing: the builder hides more until the attacker proves nothing (releases/closing.py).

The table is the demo night's FALLS-03 shape: a district quarter, its three months, persons and two
age groups, rounded to 5 with secondary suppression over the structure; May's 65-79 is then at
least May's persons less its quarter's 80+, not zero. Oracle: every whole-number assignment of the
finest cells (month x age group) that agrees with the published figures, enumerated (no LP)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

import orchestration.partnership.releases.closing as closing
import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.releases.structure as structure
from tests.oracles.holding import rounds_to

pytestmark = pytest.mark.dbt_free

# true counts: (month or quarter start, months, breakdown) -> count
TRUTH = {("2026-04-01", 1, "age:65-79"): 5, ("2026-04-01", 1, "age:80+"): 1, ("2026-04-01", 1, "persons"): 6,
         ("2026-05-01", 1, "age:65-79"): 12, ("2026-05-01", 1, "age:80+"): 6, ("2026-05-01", 1, "persons"): 18,
         ("2026-06-01", 1, "age:65-79"): 1, ("2026-06-01", 1, "age:80+"): 3, ("2026-06-01", 1, "persons"): 4,
         ("2026-04-01", 3, "age:65-79"): 18, ("2026-04-01", 3, "age:80+"): 10, ("2026-04-01", 3, "persons"): 28}
OUT = {"table": "indicator_values", "columns": ["indicator_id", "period_type", "period_start", "period_end",
                                                "geography_type", "geography_code", "breakdown", "numerator"],
       "counts": ["numerator"]}


class Protocol:
    level, outputs, margins = "aggregate", [OUT], []
    disclosure = {"suppress_counts_from": 1, "suppress_counts_to": 7, "rounding_base": 5,
                  "attacker": {"rounded_counts": "not_pinned"}}


def _table() -> pl.DataFrame:
    rows = []
    for (start, months, b), n in TRUTH.items():
        s = date.fromisoformat(start)
        end = date(s.year, s.month + months, 1) - timedelta(days=1)
        rows.append({"indicator_id": "FALLS-03", "period_type": "month" if months == 1 else "quarter", "period_start": s,
                     "period_end": end, "geography_type": "district", "geography_code": "E07900001", "breakdown": b,
                     "numerator": n})
    return pl.DataFrame(rows)


def _told_from_zero(df: pl.DataFrame) -> list[str]:
    """Every assignment of the six leaves (month x age group, whole counts, at most 32 together: the
    quarter's persons is published 30) that agrees with every published figure (half-up rounding to
    5, none in 1-7); the hidden cells whose least value over them is 1-7 (told from zero)."""
    leaves = [(m, a) for m in ("2026-04-01", "2026-05-01", "2026-06-01") for a in ("age:65-79", "age:80+")]
    grid = np.zeros((1, 0), dtype=np.int16)
    for _ in leaves:  # every row of whole counts with a sum of at most 32, one leaf at a time
        room = 32 - grid.sum(axis=1)
        grid = np.concatenate([np.column_stack([grid[room >= v], np.full((room >= v).sum(), v, dtype=np.int16)])
                               for v in range(33)])
    found = []
    keep = np.ones(len(grid), dtype=bool)
    sums = []
    for r in df.iter_rows(named=True):
        months = [str(r["period_start"])] if r["period_type"] == "month" else [x for x, _ in leaves]
        idx = [j for j, (m, a) in enumerate(leaves) if m in months and (r["breakdown"] == "persons" or a == r["breakdown"])]
        total = grid[:, idx].sum(axis=1)
        sums.append(total)
        if not r["numerator_suppressed"]:
            keep &= rounds_to(total, r["numerator"], 5) & ~((total >= 1) & (total <= 7))
    for r, total in zip(df.iter_rows(named=True), sums):
        if r["numerator_suppressed"] and 1 <= total[keep].min() <= 7:
            found.append(f"{r['period_type']} {r['period_start']} {r['breakdown']}")
    return found


def test_secondary_suppression_alone_leaves_a_hidden_count_that_is_not_zero():
    df = _table()
    protected = disclosure.apply(df, ["numerator"], [], 1, 7, 5, None, structure.equations(df, ["numerator"], []))
    assert _told_from_zero(protected)


def test_after_closing_no_hidden_count_can_be_told_from_zero_by_brute_force():
    df = _table()
    protected = disclosure.apply(df, ["numerator"], [], 1, 7, 5, None, structure.equations(df, ["numerator"], []))
    closed = closing.close(Protocol, {"indicator_values": protected}, {"indicator_values": df}, {}, None, None)
    out = closed["indicator_values"]
    assert out["numerator_suppressed"].sum() > protected["numerator_suppressed"].sum()
    assert _told_from_zero(out) == []
    assert out.filter(pl.col("numerator_suppressed"))["numerator"].null_count() == out["numerator_suppressed"].sum()
