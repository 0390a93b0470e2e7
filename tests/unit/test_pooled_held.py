"""A pooled 12 months after late records for quarters the recipient already holds.

Two nights of the builder's whole disclosure control (`protection.against_holding`, real DuckDB
ledger): the first sends four quarters of one ward and their pooled year; before the second, late
records arrive for two of those quarters and a fifth quarter closes. The held quarters are sent
again as first sent; the new pooled year must describe what the recipient's quarter figures
describe, so the late records reach no figure. Oracles: the sum of the quarter figures the
recipient holds (read from its first release, not from the builder), and a brute-force recipient
(every assignment of the quarters within their rounding, no linear programming) over both releases."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

import orchestration.partnership.releases.protection as protection
from orchestration.partnership.releases import ledger
from orchestration.partnership.releases.audit import holding as holding_audit
from orchestration.partnership.releases.audit.attack import NEW_SEQ, attack
from orchestration.partnership.releases.protocols import Protocol

pytestmark = pytest.mark.dbt_free

COLUMNS = ["indicator_id", "period_type", "period_start", "period_end", "geography_type", "geography_code",
           "breakdown", "n"]
OUT = {"table": "indicator_values", "source": "marts.x", "columns": COLUMNS, "counts": ["n"]}
POOL = {"name": "12 months", "geography_types": ["ward"], "period_type": "quarter", "periods": 4,
        "label": "rolling_12_months"}
QUARTERS = [date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1), date(2026, 1, 1), date(2026, 4, 1)]


def protocol(mode: str = "full_interval") -> Protocol:
    doc = {"id": "board", "version": "1.0.0", "level": "aggregate", "recipient": {"id": "the-board"}, "outputs": [OUT],
           "disclosure_control": {"suppress_counts_from": 1, "suppress_counts_to": 7, "rounding_base": 5,
                                  "pooled_periods": [POOL], "attacker": {"rounded_counts": mode}}}
    return Protocol(doc, Path("board.yaml"))


def _end(start: date) -> date:
    y, m = divmod(start.month + 2, 12)
    return date(start.year + y, m + 1, 1) - timedelta(days=1)


def table(counts: list[int]) -> pl.DataFrame:
    """One ward's quarters (as many as `counts`), persons."""
    return pl.DataFrame([("I1", "quarter", s, _end(s), "ward", "E05000001", "persons", n)
                         for s, n in zip(QUARTERS, counts)], schema=COLUMNS, orient="row")


def night(con, p: Protocol, counts: list[int], seq: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The builder's release for these true counts against the recipient's holding, recorded in the
    ledger as published; (the table, its ledger rows)."""
    latest = ledger.latest(con, p.recipient_id)
    history = ledger.holding(con, p.recipient_id) if latest.height else None
    tables, truth, held_truth = protection.against_holding(con, p, {OUT["table"]: table(counts)},
                                                          latest if latest.height else None, history)
    pending = ledger.figures(p, tables, truth, held_truth)
    ledger.record(con, p.recipient_id, p.id, seq, date(2026, 1, seq), pending)
    return tables[OUT["table"]], pending


def _pool(df: pl.DataFrame) -> dict:
    return df.filter(pl.col("period_type") == "rolling_12_months").row(0, named=True)


FIRST = [22, 18, 12, 23]                # all published: 20, 20, 10, 25
LATE = [22, 18, 14, 24, 31]             # two late records in the third quarter, one in the fourth; a fifth quarter


def test_the_new_pooled_year_adds_up_the_quarters_as_the_recipient_holds_them(tmp_path):
    p = protocol()
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        first, _ = night(con, p, FIRST, 1)
        second, pending = night(con, p, LATE, 2)
    sent = {r["period_start"]: r["n"] for r in first.filter(pl.col("period_type") == "quarter").iter_rows(named=True)}
    again = {r["period_start"]: r["n"] for r in second.filter(pl.col("period_type") == "quarter").iter_rows(named=True)}
    assert all(again[s] == v for s, v in sent.items()), "held quarters are sent as first sent"
    assert round(14 / 5) * 5 != sent[QUARTERS[2]], "the late records would move the third quarter's figure"
    pool = _pool(second)
    assert pool["period_start"] == QUARTERS[1] and not pool["n_suppressed"]
    assert pool["n"] == sum(again[s] for s in QUARTERS[1:]), "the sum of the figures the recipient holds"
    assert pool["n_rounding_base"] == 4 * 4 + 1
    # the ledger knows the pool describes the counts as sent (18 + 12 + 23 + 31), not tonight's
    row = pending.filter(pl.col("cell").str.contains("rolling_12_months")).row(0, named=True)
    assert (row["true_value"], row["figure_true_value"]) == (sum(LATE[1:]), 18 + 12 + 23 + 31)


def test_a_pooled_year_from_tonights_counts_would_give_the_late_records_away_and_the_attacker_sees_it(tmp_path):
    """The attack this closes: the pool of tonight's counts, rounded on its own, beside the held
    quarters. Tonight's 18 + 14 + 24 + 31 = 87 is published 85 (83-87); the quarters as held (20, 10,
    25, 30) stand for 18 + 12 + 23 + 31 = 84 within 77-93: the pool rules out part of that, which a
    recipient can only use by taking the pool to add up the quarters it holds (it does not)."""
    p = protocol()
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        night(con, p, FIRST, 1)
        _, pending = night(con, p, LATE, 2)
        held = ledger.holding(con, p.recipient_id).filter(pl.col("seq") == 1)
    is_pool = pl.col("cell").str.contains("rolling_12_months")
    naive = pending.with_columns(pl.when(is_pool).then(pl.lit(85.0)).otherwise(pl.col("value")).alias("value"),
                                 pl.when(is_pool).then(pl.lit(5)).otherwise(pl.col("rounding_base")).alias("rounding_base"),
                                 pl.when(is_pool).then(pl.col("true_value")).otherwise(pl.col("figure_true_value"))
                                 .alias("figure_true_value"))
    new = naive.with_columns(pl.lit(NEW_SEQ, dtype=pl.Int64).alias("seq")).select(held.columns)
    assert {k for *_, k in attack(pl.concat([held, new]), None, None, "full_interval").flags}
    ours = pending.with_columns(pl.lit(NEW_SEQ, dtype=pl.Int64).alias("seq")).select(held.columns)
    assert not attack(pl.concat([held, ours]), None, None, "full_interval").flags


def test_nothing_in_the_two_releases_is_narrowed_or_changed_by_brute_force(tmp_path):
    p = protocol()
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        first, _ = night(con, p, FIRST, 1)
        second, pending = night(con, p, LATE, 2)
        folder = tmp_path / "second"
        (folder / "parquet").mkdir(parents=True)
        second.write_parquet(folder / "parquet" / f"{OUT['table']}.parquet")
        problems, _ = holding_audit.check(folder, p, con, pending)
    assert problems == []
    # Brute force over what the recipient holds: every quarter is published, so each lies within its
    # figure's rounding; every assignment of the five quarters that agrees with every figure of both
    # releases (a pool as the sum of its quarters) is tried. Nothing a figure's rounding allows may be
    # ruled out. Held quarters are one count each (sent again as first sent, so the recipient cannot
    # tell them from the first night's).
    figures = [(r["period_type"], r["period_start"], r["n"], r["n_rounding_base"])
               for df in (first, second) for r in df.iter_rows(named=True) if not r["n_suppressed"]]
    quarters = {s: set(range(math.ceil(n - b / 2), math.ceil(n + b / 2))) - set(range(1, 8))
                for t, s, n, b in figures if t == "quarter"}
    assert sorted(quarters) == QUARTERS
    seen: dict[tuple, set[int]] = {}
    for qs in itertools.product(*(sorted(quarters[s]) for s in QUARTERS)):
        values = {}
        for t, s, n, b in figures:
            i = QUARTERS.index(s)
            values[(t, s)] = qs[i] if t == "quarter" else sum(qs[i:i + 4])
        if all(math.ceil(n - b / 2) <= values[(t, s)] < math.ceil(n + b / 2) for t, s, n, b in figures):
            for k, v in values.items():
                seen.setdefault(k, set()).add(v)
    for t, s, n, b in figures:
        assert seen[(t, s)] == set(range(math.ceil(n - b / 2), math.ceil(n + b / 2))) - set(range(1, 8)), (t, s)
