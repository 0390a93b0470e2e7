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
import orchestration.partnership.releases.audit.solve as attack_solve
import orchestration.partnership.releases.structure as structure
from orchestration.partnership.releases import ledger
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


def _indicators(n: int) -> pl.DataFrame:
    """`n` district quarters of as many indicators: no relation between them."""
    s, e = date(2026, 4, 1), date(2026, 6, 30)
    return pl.DataFrame([{"indicator_id": f"I{k:02d}", "period_type": "quarter", "period_start": s, "period_end": e,
                          "geography_type": "district", "geography_code": "E07900001", "breakdown": "persons",
                          "numerator": 20 + k} for k in range(n)])


def test_closing_goes_on_while_the_attacker_still_finds_a_count_hiding_can_protect(monkeypatch):
    # an attacker that finds one published count pinned per round, until none is published: closing
    # must not stop after a fixed number of rounds (the audit would then block the release)
    df = _indicators(30)
    protected = disclosure.apply(df, ["numerator"], [], 1, 7, 5, None, structure.equations(df, ["numerator"], []))
    assert not protected["numerator_suppressed"].any()

    def one_at_a_time(holding, *args, **kwargs):
        found = attack_solve.Attack()
        left = holding.filter((pl.col("kind") == "count") & ~pl.col("suppressed"))["cell"].sort()
        if left.len():
            found.flags.append((left[0], "numerator", None, "pinned"))
        return found

    monkeypatch.setattr(closing, "attack", one_at_a_time)
    closed = closing.close(Protocol, {"indicator_values": protected}, {"indicator_values": df}, {}, None, None)
    assert closed["indicator_values"]["numerator_suppressed"].all()


def test_a_hidden_count_whose_totals_are_all_held_gets_the_nearest_cells_that_are_not_held_hidden():
    # May's 65-79 proven not zero; its totals (May's persons, the quarter's 65-79) were sent before and
    # are held, so they cannot be hidden: the cells next to it that can be must go instead
    df = _table()
    protected = disclosure.apply(df, ["numerator"], [], 1, 7, 5, None, structure.equations(df, ["numerator"], []))
    cells = ledger.cell_keys(protected, ledger.key_columns(OUT))
    name = {(str(r["period_start"]), r["period_type"], r["breakdown"]): c for r, c in zip(protected.iter_rows(named=True), cells)}
    may = name[("2026-05-01", "month", "age:65-79")]
    totals = [name[("2026-05-01", "month", "persons")], name[("2026-04-01", "quarter", "age:65-79")]]
    protected = protected.with_columns(
        pl.Series("numerator", [None if c == may else v for c, v in zip(cells, protected["numerator"].to_list())]),
        pl.Series("numerator_suppressed", [c == may or s for c, s in zip(cells, protected["numerator_suppressed"].to_list())]))
    held = {("indicator_values", c, "numerator"): float(df["numerator"][cells.index(c)]) for c in totals}
    after, changed = closing._hide(Protocol, OUT, protected, df, {(may, "numerator"): "not_zero"}, held, None)
    newly = {c for c, a, b in zip(cells, protected["numerator_suppressed"].to_list(), after["numerator_suppressed"].to_list())
             if b and not a}
    assert changed and newly
    assert not newly & set(totals), "a held cell is never hidden"
