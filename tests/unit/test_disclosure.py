"""Disclosure control on aggregate outputs: typed suppression and rounding."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.partnership import disclosure


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
