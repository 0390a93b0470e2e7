"""The additive relations of a table's structure, found without a protocol declaring them, and
secondary suppression over them; pooled periods; controlled rounding of standardisation bands."""

from __future__ import annotations

import itertools
import math
import random
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.releases.pooling as pooling
import orchestration.partnership.releases.structure as structure
from orchestration.partnership.releases.derived import controlled_round
from tests.oracles import attacker

pytestmark = pytest.mark.dbt_free

def _end(start: date, months: int) -> date:
    y, m = divmod(start.month - 1 + months, 12)
    return date(start.year + y, m + 1, 1) - timedelta(days=1)


def _row(period_type, start, months, geo, code, breakdown, n, d=None):
    return {"indicator_id": "FALLS-04", "period_type": period_type, "period_start": start, "period_end": _end(start, months),
            "geography_type": geo, "geography_code": code, "breakdown": breakdown, "numerator": n, "denominator": d}


def _district_quarter(months: list[int], breakdown="age:65+") -> list[dict]:
    """A district quarter and its three months (the issue's FALLS-04 shape)."""
    rows = [_row("month", date(2026, 7 + i, 1), 1, "district", "E07900001", breakdown, n) for i, n in enumerate(months)]
    return rows + [_row("quarter", date(2026, 7, 1), 3, "district", "E07900001", breakdown, sum(months))]


def _frame(rows):
    return pl.DataFrame(rows, schema={"indicator_id": pl.Utf8, "period_type": pl.Utf8, "period_start": pl.Date,
                                      "period_end": pl.Date, "geography_type": pl.Utf8, "geography_code": pl.Utf8,
                                      "breakdown": pl.Utf8, "numerator": pl.Int64, "denominator": pl.Int64})


def test_months_are_found_within_their_quarter_without_a_declared_margin():
    df = _frame(_district_quarter([19, 4, 11]))
    eqs = structure.equations(df, ["numerator", "denominator"], [])
    assert eqs == [(3, [0, 1, 2])]


def test_a_suppressed_month_is_not_solved_from_its_quarter_and_the_other_months():
    df = _frame(_district_quarter([19, 4, 11]))
    declared_only = disclosure.apply(df, ["numerator"], [], 1, 7, 1, margins=[])
    rows = df.to_dicts()
    months = [{"name": "months", "by": ["indicator_id", "geography_code", "breakdown"], "column": "period_type",
               "total": "quarter", "members": ["month"]}]
    assert attacker.recovered(rows, "numerator", declared_only["numerator_suppressed"].to_list(), months) == {1}
    out = disclosure.apply(df, ["numerator"], [], 1, 7, 1, equations=structure.equations(df, ["numerator"], []))
    hidden = out["numerator_suppressed"].to_list()
    assert hidden[1] and sum(hidden) >= 2
    assert not attacker.recovered(rows, "numerator", hidden, months)


def test_wards_sexes_and_repeated_cells_are_relations_too():
    rows = []
    for code, (f, m) in {"E05900001": (3, 9), "E05900002": (10, 12)}.items():
        rows += [_row("quarter", date(2026, 7, 1), 3, "ward", code, b, n) for b, n in
                 (("persons", f + m), ("sex:F", f), ("sex:M", m))]
    rows += [_row("quarter", date(2026, 7, 1), 3, "district", "E07900001", b, n) for b, n in
             (("persons", 34), ("sex:F", 13), ("sex:M", 21))]
    rows.append(dict(rows[0]))  # the same cell twice
    df = _frame(rows)
    eqs = structure.equations(df, ["numerator", "denominator"], [])
    # rows: ward 1 persons, F, M (0-2); ward 2 (3-5); the district (6-8); ward 1 persons again (9)
    assert (6, [3, 9]) in eqs or (6, [0, 3]) in eqs               # wards within the district, persons
    assert (7, [1, 4]) in eqs and (8, [2, 5]) in eqs              # and by sex
    assert (0, [1, 2]) in eqs and (6, [7, 8]) in eqs              # sexes within persons
    assert (0, [9]) in eqs                                        # the repeated cell
    parents = {"E05900001": "E07900001", "E05900002": "E07900001", "E05900003": "E07900001"}
    assert not [e for e in structure.equations(df, ["numerator"], [], parents) if e[0] == 6 and e[1] != [7, 8]], \
        "a district whose third ward is not in the table is not the sum of the two that are"


def test_pooled_rows_add_up_the_latest_periods_and_are_their_total():
    rows = []
    for q, (n, d) in enumerate([(2, 9), (3, 10), (1, 8), (4, 12), (2, 11)]):
        start = date(2025 + (q + 1) // 4, ((q + 1) % 4) * 3 + 1, 1)
        rows.append(_row("quarter", start, 3, "ward", "E05900001", "persons", n, d))
    df = _frame(rows)
    spec = {"name": "12 months", "geography_types": ["ward"], "period_type": "quarter", "periods": 4, "label": "rolling_12_months"}
    out = pooling.add_pooled(df, [spec], ["numerator", "denominator"], [])
    pooled = out.filter(pl.col("period_type") == "rolling_12_months").row(0, named=True)
    assert (pooled["numerator"], pooled["denominator"]) == (3 + 1 + 4 + 2, 10 + 8 + 12 + 11)
    assert (pooled["period_start"], pooled["period_end"]) == (date(2025, 7, 1), date(2026, 6, 30))
    assert pooled[pooling.POOL_OF] == "quarter"
    eqs = structure.equations(out.drop(pooling.POOL_OF), ["numerator", "denominator"], [])
    assert eqs == [(5, [1, 2, 3, 4])]


def test_fewer_consecutive_periods_than_asked_pool_nothing():
    df = _frame([_row("quarter", date(2026, 1, 1), 3, "ward", "E05900001", "persons", 3),
                 _row("quarter", date(2026, 7, 1), 3, "ward", "E05900001", "persons", 3)])
    spec = {"name": "6 months", "geography_types": ["ward"], "period_type": "quarter", "periods": 2, "label": "six"}
    assert pooling.add_pooled(df, [spec], ["numerator"], []).height == 2


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=1, max_size=8), st.sampled_from([1, 2, 5, 10]))
def test_controlled_rounding_adds_up_to_the_rounded_total_and_stays_within_one_base(values, base):
    total = int((sum(values) / base + 0.5) // 1) * base  # rounded half up, as the published count
    out = controlled_round(values, total, base)
    assert out is not None and sum(out) == total
    for v, r in zip(values, out):
        assert r % base == 0 and abs(r - v) < base
        assert v % base or r == v, "a multiple of the base (a zero too) stays as it is"


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_on_random_tables_with_months_no_suppressed_cell_is_recoverable_from_the_structure(seed):
    """Random months of a district and wards, with quarters as their totals: after secondary suppression
    over the structural relations, exact elimination recovers nothing (counts published exactly)."""
    rng = random.Random(seed)
    wards = [f"E0590000{w}" for w in range(rng.randint(1, 4))]
    rows = []
    for q in range(rng.randint(1, 2)):
        start_month = 1 + 3 * q
        fine = {(w, m): rng.choice([0, 0, 1, 2, 5, 9, 14]) for w in wards for m in range(3)}
        for geo, codes in (("ward", wards), ("district", ["E07900001"])):
            for code in codes:
                def total(m=None):
                    return sum(v for (w, mm), v in fine.items() if (geo == "district" or w == code) and m in (None, mm))
                rows += [_row("month", date(2026, start_month + m, 1), 1, geo, code, "persons", total(m)) for m in range(3)]
                rows.append(_row("quarter", date(2026, start_month, 1), 3, geo, code, "persons", total()))
    df = _frame(rows)
    eqs = structure.equations(df, ["numerator"], [])
    out = disclosure.apply(df, ["numerator"], [], 1, 7, 1, equations=eqs)
    hidden = out["numerator_suppressed"].to_list()
    truth = df["numerator"].to_list()
    assert all(h for v, h in zip(truth, hidden) if 1 <= v <= 7)
    system = []
    unknown = [i for i, h in enumerate(hidden) if h]
    col = {c: j for j, c in enumerate(unknown)}
    for t, ms in _oracle_relations(df.to_dicts()):
        coef = [0] * len(unknown)
        rhs = 0
        for i, sign in [(t, 1)] + [(m, -1) for m in ms]:
            if hidden[i]:
                coef[col[i]] += sign
            else:
                rhs -= sign * truth[i]
        if any(coef):
            system.append(coef + [rhs])
    assert not attacker.pinned(system, len(unknown))


def _oracle_relations(rows: list[dict]) -> list[tuple[int, list[int]]]:
    """The same relations written out by hand: months in their quarter, wards in the district."""
    out = []
    for i, r in enumerate(rows):
        if r["period_type"] == "quarter":
            out.append((i, [j for j, s in enumerate(rows) if s["period_type"] == "month"
                             and s["geography_code"] == r["geography_code"]
                             and r["period_start"] <= s["period_start"] <= r["period_end"]]))
        if r["geography_type"] == "district":
            out.append((i, [j for j, s in enumerate(rows) if s["geography_type"] == "ward"
                             and s["period_type"] == r["period_type"] and s["period_start"] == r["period_start"]]))
    return [(t, ms) for t, ms in out if ms]


def test_the_audit_finds_a_percentage_that_is_not_that_of_the_published_counts():
    from orchestration.partnership.releases.audit import derived as derived_check

    df = pl.DataFrame({"numerator": [10, 10, None, 40], "denominator": [165, 165, 20, None],
                       "value": [100 * 10 / 165, 100 * 8 / 164, None, 40.0], "unit": ["percent", "percent", "percent", "families"]})
    assert derived_check.problems("t", df) == ["t: 1 percentages are not those of the published counts"]
    assert derived_check.problems("t", df.with_columns(pl.Series("value", [100 * 10 / 165, None, None, 41.0]))) == [
        "t: 1 count values differ from the published counts"]


def _pooled_year(quarters: list[int]) -> pl.DataFrame:
    rows = [_row("quarter", date(2025, 10, 1), 3, "ward", "E05900003", "persons", quarters[0])]
    rows += [_row("quarter", date(2026, 1 + 3 * i, 1), 3, "ward", "E05900003", "persons", n) for i, n in enumerate(quarters[1:])]
    spec = {"name": "12 months", "geography_types": ["ward"], "period_type": "quarter", "periods": 4, "label": "rolling_12_months"}
    return pooling.add_pooled(_frame(rows), [spec], ["numerator"], [])


def _protect(df: pl.DataFrame) -> pl.DataFrame:
    eqs = structure.equations(df, ["numerator"], [])
    return pooling.from_published(disclosure.apply(df, ["numerator"], [], 1, 7, 5, None, eqs), eqs, ["numerator"], 5)


def test_a_pooled_count_of_published_quarters_is_their_published_sum_and_narrows_nothing():
    # the demo night's shape: four quarters of 23 each are published 25; a pool rounded on its own
    # (92 -> 90, so 88-92) would leave 23 as the only value of every quarter
    out = _protect(_pooled_year([23, 23, 23, 23]))
    quarters = out.filter(pl.col("period_type") == "quarter")
    pooled = out.filter(pl.col("period_type") == "rolling_12_months").row(0, named=True)
    assert quarters["numerator"].to_list() == [25] * 4 and quarters["numerator_rounding_base"].to_list() == [5] * 4
    # each quarter stands for 23-27, so their sum for 92-108: base 17 says exactly that (within 8)
    assert (pooled["numerator"], pooled["numerator_rounding_base"], pooled["numerator_suppressed"]) == (100, 17, False)
    # brute force, as a recipient would: every whole count each figure's rounding allows (half up)
    allowed = lambda v, b: range(math.ceil(v - b / 2), math.ceil(v + b / 2))  # noqa: E731
    possible = [set() for _ in range(5)]
    for qs in itertools.product(*(allowed(25, 5) for _ in range(4))):
        if sum(qs) in allowed(pooled["numerator"], pooled["numerator_rounding_base"]):
            for i, q in enumerate((*qs, sum(qs))):
                possible[i].add(q)
    assert all(p == set(range(23, 28)) for p in possible[:4]), "no quarter is narrowed"
    assert possible[4] == set(allowed(pooled["numerator"], pooled["numerator_rounding_base"])), "nor the pool"
    assert sum([23] * 4) in allowed(pooled["numerator"], pooled["numerator_rounding_base"])


def test_a_pooled_count_with_a_hidden_quarter_is_rounded_on_its_own():
    out = _protect(_pooled_year([3, 30, 31, 29]))
    pooled = out.filter(pl.col("period_type") == "rolling_12_months").row(0, named=True)
    assert out.filter(pl.col("period_type") == "quarter")["numerator_suppressed"].to_list() == [True, False, False, True]
    assert (pooled["numerator"], pooled["numerator_rounding_base"]) == (95, 5)  # 93, rounded to 5
