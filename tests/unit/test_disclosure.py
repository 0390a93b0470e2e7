"""Disclosure control on aggregate outputs: typed suppression and rounding."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestration.partnership.releases.disclosure as disclosure
from tests.oracles import attacker


def test_counts_from_1_to_7_are_suppressed_and_others_rounded_to_the_nearest_5():
    df = pl.DataFrame({"n": [0, 1, 7, 8, 12, 13, None], "rate": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, None]})
    out = disclosure.apply(df, counts=["n"], derived=["rate"], low=1, high=7, base=5)
    assert out["n"].to_list() == [0, None, None, 10, 10, 15, None]
    assert out["n_suppressed"].to_list() == [False, True, True, False, False, False, False]
    assert out["n_rounding_base"].unique().to_list() == [5]
    assert out["rate"].to_list() == [0.0, None, None, 3.0, 4.0, 5.0, None]
    assert out["derived_withheld"].to_list() == [False, True, True, False, False, False, False]


def test_a_rate_is_withheld_when_any_of_its_counts_is_suppressed():
    df = pl.DataFrame({"num": [20, 20], "den": [3, 40], "pct": [0.5, 0.5]})
    out = disclosure.apply(df, counts=["num", "den"], derived=["pct"], low=1, high=7, base=5)
    assert out["pct"].to_list() == [None, 0.5]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)), min_size=1, max_size=50))
def test_no_published_count_is_small_or_unrounded_and_nothing_is_invented(values):
    out = disclosure.apply(pl.DataFrame({"n": values}, schema={"n": pl.Int64}), counts=["n"], derived=[], low=1, high=7, base=5)
    for original, published, suppressed in zip(values, out["n"].to_list(), out["n_suppressed"].to_list()):
        if original is None:
            assert published is None and not suppressed
        elif 1 <= original <= 7:
            assert published is None and suppressed
        else:
            assert published % 5 == 0 and abs(published - original) <= 2.5 and not suppressed


# ---------------------------------------------------------------- secondary suppression

from fractions import Fraction  # noqa: E402

MARGINS = [
    {"name": "wards within the district", "by": ["breakdown"], "column": "geo", "total": "district", "members": ["ward"]},
    {"name": "sex within persons", "by": ["geo", "code"], "column": "breakdown", "total": "persons", "members_prefix": "sex:"},
]


def _table(cells: list[list[int]]) -> pl.DataFrame:
    """Wards x (F, M) with their additive margins: ward totals, district by sex, district total."""
    rows = []
    for w, (f, m) in enumerate(cells):
        code = f"E0590000{w}"
        rows += [("ward", code, "sex:F", f), ("ward", code, "sex:M", m), ("ward", code, "persons", f + m)]
    rows += [("district", "E07900001", "sex:F", sum(c[0] for c in cells)),
             ("district", "E07900001", "sex:M", sum(c[1] for c in cells)),
             ("district", "E07900001", "persons", sum(c[0] + c[1] for c in cells))]
    return pl.DataFrame(rows, schema=["geo", "code", "breakdown", "n"], orient="row")


def _attack(df: pl.DataFrame, published: list[int | None], suppressed: list[bool]) -> set[int]:
    """An attacker who knows the table is additive: exact Gaussian elimination over the suppressed
    cells (fractions, no floating point), reporting every cell it pins down."""
    keys = list(zip(df["geo"], df["code"], df["breakdown"]))
    where = {k: i for i, k in enumerate(keys)}
    eqs = []
    for g, code in {(g, c) for g, c, _ in keys}:
        eqs.append((where[(g, code, "persons")], [where[(g, code, "sex:F")], where[(g, code, "sex:M")]]))
    for b in ("sex:F", "sex:M", "persons"):
        eqs.append((where[("district", "E07900001", b)], [i for (g, c, bb), i in where.items() if g == "ward" and bb == b]))
    unknown = [i for i, s in enumerate(suppressed) if s]
    col = {c: j for j, c in enumerate(unknown)}
    rows = []
    for t, ms in eqs:  # total - sum(members) = 0, knowns moved right
        coef = [Fraction(0)] * len(unknown)
        rhs = Fraction(0)
        for i, sign in [(t, 1)] + [(m, -1) for m in ms]:
            if suppressed[i]:
                coef[col[i]] += sign
            else:
                rhs -= sign * (published[i] or 0)
        rows.append(coef + [rhs])
    return {unknown[j] for j in attacker.pinned(rows, len(unknown))}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=2, max_size=8))
def test_no_suppressed_cell_can_be_recovered_from_the_margins(cells):
    df = _table([list(c) for c in cells])
    # base 1: the published cells are exact, so the attacker's equations are exact too
    out = disclosure.apply(df, counts=["n"], derived=[], low=1, high=7, base=1, margins=MARGINS)
    published, suppressed = out["n"].to_list(), out["n_suppressed"].to_list()
    truth = df["n"].to_list()
    for v, s in zip(truth, suppressed):
        if 1 <= v <= 7:
            assert s, "every small count is suppressed"
    for i, (v, p, s) in enumerate(zip(truth, published, suppressed)):
        assert (p is None) == s and (s or p == v)
    assert not _attack(df, published, suppressed), "a suppressed cell was recovered from the margins"


def test_a_single_small_ward_forces_a_second_suppression_and_the_attack_without_it_succeeds():
    df = _table([[3, 20], [30, 25], [40, 41]])
    primary = disclosure.apply(df, counts=["n"], derived=[], low=1, high=7, base=1)
    assert _attack(df, primary["n"].to_list(), primary["n_suppressed"].to_list()), "primary suppression alone leaks"
    out = disclosure.apply(df, counts=["n"], derived=[], low=1, high=7, base=1, margins=MARGINS)
    assert sum(out["n_suppressed"]) >= 4  # a rectangle: two wards x two columns
    assert not _attack(df, out["n"].to_list(), out["n_suppressed"].to_list())


def test_secondary_suppression_withholds_the_rates_of_the_rows_it_hides():
    df = _table([[3, 20], [30, 25]]).with_columns((pl.col("n") * 1.5).alias("rate"))
    out = disclosure.apply(df, counts=["n"], derived=["rate"], low=1, high=7, base=5, margins=MARGINS)
    assert out.filter(pl.col("n_suppressed"))["rate"].null_count() == int(out["n_suppressed"].sum())
    assert out["derived_withheld"].to_list() == out["n_suppressed"].to_list()


# ---------------------------------------------------------------- secondary suppression: any table, county scale

import random  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import orchestration.partnership.releases.audit as audit
from benchmarks.disclosure import county_table  # noqa: E402
from orchestration.partnership.releases.protocols import load_protocol  # noqa: E402
from orchestration.partnership.settings import PROJECT_ROOT  # noqa: E402

pytestmark = pytest.mark.dbt_free


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 6), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_determined_columns_are_exactly_the_unknowns_exact_elimination_pins_down(m, n, seed):
    rng = np.random.default_rng(seed)
    a = rng.choice([-1.0, 0.0, 0.0, 1.0], size=(m, n))
    if m and rng.random() < 0.5:  # dependent rows, as margins have
        a = np.vstack([a, a[0] - a[-1]])
    assert set(disclosure.determined_columns(a)) == attacker.pinned(a.astype(int).tolist(), n)


def _hidden_table_system(rng: np.random.Generator) -> np.ndarray:
    """The equations among the hidden cells of a small three-way table with every margin (totals at
    index 0 of each dimension), as `_Suppressor.determined` builds them: sparse, with many dependent rows."""
    shape = tuple(int(d) + 1 for d in rng.integers(2, 5, size=3))
    idx = np.arange(np.prod(shape)).reshape(shape)
    hidden = rng.random(idx.size) < rng.uniform(0.2, 0.9)
    col = {c: j for j, c in enumerate(np.flatnonzero(hidden).tolist())}
    rows = []
    for axis in range(3):
        moved = np.moveaxis(idx, axis, 0)
        for rest in np.ndindex(moved.shape[1:]):
            line = moved[(slice(None),) + rest].tolist()
            row = np.zeros(len(col))
            for c, sign in [(line[0], 1.0)] + [(m, -1.0) for m in line[1:]]:
                if hidden[c]:
                    row[col[c]] += sign
            rows.append(row)
    return np.array(rows).reshape(len(rows), len(col))


@pytest.mark.parametrize("seed", range(12))
def test_determined_columns_on_sparse_table_systems_are_exactly_those_exact_elimination_pins_down(seed):
    rng = np.random.default_rng([seed, 26])
    a = _hidden_table_system(rng)
    if seed % 3 == 0:  # and a row that is a combination of others, in one place
        a = np.vstack([a, rng.integers(-2, 3, size=a.shape[0]) @ a]) if a.shape[0] else a
    assert set(disclosure.determined_columns(a)) == attacker.pinned(a.astype(int).tolist(), a.shape[1])


def test_a_column_in_a_single_row_is_determined_when_the_others_of_that_row_are():
    # x0 appears once, yet x1 + x2 is fixed by the rows together (x1 - x3, x2 + x3): x0 is pinned
    a = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0], [0.0, 0.0, 1.0, 1.0]])
    assert disclosure.determined_columns(a) == [0]
    assert disclosure.determined_columns(a[:2]) == []


def _random_case(seed: int):
    rng = random.Random(seed)
    rows, margins = attacker.random_table(rng)
    df = pl.DataFrame(rows, schema={"indicator_id": pl.Utf8, "period_start": pl.Utf8, "geography_type": pl.Utf8,
                                    "geography_code": pl.Utf8, "breakdown": pl.Utf8, "n": pl.Int64})
    # primary suppression, and now and then a cell suppressed already for another reason
    before = [v is not None and (1 <= v <= 7 or rng.random() < 0.05) for v in df["n"].to_list()]
    return rows, margins, df, before


def _flips(seed: int, n: int) -> list[bool]:
    rng = random.Random(seed + 1)
    return [rng.random() < 0.2 for _ in range(n)]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_after_secondary_suppression_no_cell_is_recoverable_on_random_tables(seed):
    rows, margins, df, before = _random_case(seed)
    values = df["n"].to_list()
    equations = disclosure.margin_equations(df, margins)
    out = disclosure.secondary(values, before, equations)
    assert all(o for o, b in zip(out, before) if b), "a suppressed cell was published"
    assert disclosure.secondary(values, before, equations) == out, "a rerun hides other cells"
    shared: dict = {}  # as `apply` shares it between a table's counts: filled by another count's run first
    disclosure.secondary(values, [b or rng_flip for b, rng_flip in zip(before, _flips(seed, len(before)))], equations, shared)
    assert disclosure.secondary(values, before, equations, shared) == out, "what one count kept changed another's"
    # a cell the margins fix even when every cell is suppressed (a total whose only member row is present,
    # rows missing elsewhere) cannot be protected by suppression; the audit reports it and the release stops
    forced = attacker.recovered(rows, "n", [True] * len(rows), margins)
    recovered = attacker.recovered(rows, "n", out, margins)
    assert recovered <= forced
    assert audit.recoverable_cells(df.with_columns(pl.Series("n_suppressed", out)), "n", margins) == len(recovered)


def test_the_random_tables_leak_under_primary_suppression_alone():
    """The property above is not vacuous: most random tables leak before secondary suppression."""
    leaking = sum(bool(attacker.recovered(rows, "n", before, margins))
                  for rows, margins, _, before in map(_random_case, range(60)))
    assert leaking >= 30


@pytest.mark.parametrize("protocol_id", ["falls-board", "safeguarding-board"])
def test_county_shaped_release_tables_leave_nothing_recoverable_and_reruns_are_identical(protocol_id):
    """96 wards + the district, the indicators and breakdowns of the release, its declared margins."""
    margins = load_protocol(PROJECT_ROOT / "contracts" / "protocols" / f"{protocol_id}.yaml").margins
    df = county_table(protocol_id, wards=96, seed=7)
    out = disclosure.apply(df, ["numerator", "denominator"], [], 1, 7, 5, margins=margins)
    for c in ("numerator", "denominator"):
        primary = df[c].is_between(1, 7)
        assert out.filter(primary)[f"{c}_suppressed"].all()
        assert out[f"{c}_suppressed"].sum() > primary.sum(), "the margins force some secondary suppression"
        assert audit.recoverable_cells(out, c, margins) == 0
    assert disclosure.apply(df, ["numerator", "denominator"], [], 1, 7, 5, margins=margins).equals(out)
