"""The audit's attacker: what a recipient can prove from everything it holds.

Checked against a brute-force recipient (`tests/oracles/holding.py`: every assignment of the
finest counts tried, no linear programming, no relations derived from keys), and on the attacks
found by hand on a demo night: a suppressed month solved through its quarter, a rate giving back
its counts, and a change between two releases.
"""

from __future__ import annotations

import json
import random

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestration.partnership.releases.audit.attack as attack
import orchestration.partnership.releases.audit.nearby as attack_nearby
import orchestration.partnership.releases.audit.solve as attack_solve
from orchestration.partnership.releases.ledger import SCHEMA
from tests.oracles import holding as oracle


def cell(geo: str, code: str, breakdown: str = "persons", period: str = "2025-04-01", ptype: str = "quarter",
         indicator: str = "I1", unit: str | None = None) -> str:
    key = {"indicator_id": indicator, "period_type": ptype, "period_start": period, "geography_type": geo,
           "geography_code": code, "breakdown": breakdown}
    if unit is not None:
        key["unit"] = unit
    return json.dumps(key, sort_keys=True)


def row(seq: int, c: str, state: tuple, truth: float | None = None, figure_truth: float | None = None,
        fig: str = "n", low: int | None = None, high: int | None = None) -> dict:
    sup = state[0] == "suppressed"
    return {"seq": seq, "table_name": "t", "cell": c, "figure": fig, "kind": "count",
            "value": None if sup else float(state[1]), "suppressed": sup, "rounding_base": 1 if sup else state[2],
            "suppress_from": low, "suppress_to": high, "true_value": truth,
            "figure_true_value": truth if figure_truth is None else figure_truth}


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"seq": pl.Int64, **SCHEMA})


def kinds(result: attack.Attack) -> set[str]:
    return {k for *_, k in result.flags}


def test_a_count_stands_for_the_whole_counts_its_rounding_allows_without_the_suppressed_range():
    assert attack.allowed(10, 5, 1, 7) == (8, 12)
    assert attack.allowed(15, 5, 1, 7) == (13, 17)
    assert attack.allowed(0, 5, 1, 7) == (0, 0)  # 1 and 2 would have been suppressed
    assert attack.allowed(20, 1, None, None) == (20, 20)


# ---------------------------------------------------------------- the attacks found on a demo night

def _months_and_quarter(aug_18_64: tuple, aug_65: tuple, q3_18_64: tuple = ("published", 12, 1)) -> pl.DataFrame:
    """FALLS-04, district, Q3: Aug 65+ = Q3 65+ − Jul − Sep = 45 − 19 − 11, then Aug 18–64 = 19 − 15 − 0."""
    d = ("district", "E07900001")
    figures = {
        ("2026-07-01", "month", "persons"): ("published", 30, 1), ("2026-07-01", "month", "age:0-17"): ("published", 0, 1),
        ("2026-07-01", "month", "age:18-64"): ("published", 11, 1), ("2026-07-01", "month", "age:65+"): ("published", 19, 1),
        ("2026-08-01", "month", "persons"): ("published", 19, 1), ("2026-08-01", "month", "age:0-17"): ("published", 0, 1),
        ("2026-08-01", "month", "age:18-64"): aug_18_64, ("2026-08-01", "month", "age:65+"): aug_65,
        ("2026-09-01", "month", "persons"): ("published", 19, 1), ("2026-09-01", "month", "age:0-17"): ("published", 0, 1),
        ("2026-09-01", "month", "age:18-64"): ("published", 8, 1), ("2026-09-01", "month", "age:65+"): ("published", 11, 1),
        ("2026-07-01", "quarter", "persons"): ("published", 68, 1), ("2026-07-01", "quarter", "age:0-17"): ("published", 0, 1),
        ("2026-07-01", "quarter", "age:18-64"): q3_18_64 if q3_18_64[0] == "suppressed" else ("published", 23, 1),
        ("2026-07-01", "quarter", "age:65+"): ("published", 45, 1),
    }
    return frame([row(1, cell(*d, b, p, t), s, low=1, high=7) for (p, t, b), s in figures.items()])


def test_a_suppressed_month_is_solved_through_its_quarter_though_no_protocol_declares_that_margin():
    result = attack.attack(_months_and_quarter(("suppressed",), ("suppressed",)))
    found = {(json.loads(c)["breakdown"], json.loads(c)["period_start"], k) for c, _, _, k in result.flags}
    assert ("age:18-64", "2026-08-01", "not_zero") in found
    assert any("months within the quarter" in f and "age:18-64" in f for f in result.findings)


def test_hiding_the_quarter_cells_too_frees_august_and_hidden_quarters_proven_above_the_small_range_are_no_finding():
    # the quarter's 18-64 and 65+ hidden as well: August's two hidden cells can trade counts both ways;
    # each hidden quarter cell is at least its published July and September (19 and 30), above 1-7:
    # the recipient learns they were not small, which reveals no small count
    result = attack.attack(_months_and_quarter(("suppressed",), ("suppressed",), q3_18_64=("suppressed",)).with_columns(
        pl.when(pl.col("cell").str.contains('"quarter"') & pl.col("cell").str.contains("65\\+"))
        .then(None).otherwise(pl.col("value")).alias("value"),
        (pl.col("suppressed") | (pl.col("cell").str.contains('"quarter"') & pl.col("cell").str.contains("65\\+")))
        .alias("suppressed")))
    found = {(json.loads(c)["period_type"], json.loads(c)["breakdown"], k) for c, _, _, k in result.flags}
    assert found == set(), result.findings


def test_points_kept_from_a_wider_holding_are_witnesses_only_where_they_still_hold():
    # the builder's rounds keep whole points (`nearby.Witnesses`); a point from the holding with the
    # quarter hidden puts August's 18-64 at zero, which the holding with the quarter published rules out
    quarter_65 = pl.col("cell").str.contains('"quarter"') & pl.col("cell").str.contains("65\\+")
    wide = _months_and_quarter(("suppressed",), ("suppressed",), q3_18_64=("suppressed",)).with_columns(
        pl.when(quarter_65).then(None).otherwise(pl.col("value")).alias("value"),
        (pl.col("suppressed") | quarter_65).alias("suppressed"))
    narrow = _months_and_quarter(("suppressed",), ("suppressed",))
    kept = attack_nearby.Witnesses()
    assert not attack.attack(wide, witnesses=kept).flags
    assert kept.points, "the wider holding's points are kept"
    seeded = attack.attack(narrow, witnesses=kept)
    assert kinds(seeded) == kinds(attack.attack(narrow)) == {"not_zero"}
    assert sorted(seeded.flags) == sorted(attack.attack(narrow).flags)


def test_a_rate_from_the_unrounded_counts_gives_them_back_and_one_from_the_published_counts_does_not():
    c = cell("district", "E07900001", period="2025-01-01", ptype="month", unit="percent")
    counts = [row(1, c, ("published", 10, 5), 8, fig="numerator", low=1, high=7),
              row(1, c, ("published", 165, 5), 164, fig="denominator", low=1, high=7)]
    rate = {"seq": 1, "table_name": "t", "cell": c, "kind": "derived", "suppressed": None, "rounding_base": None,
            "suppress_from": None, "suppress_to": None, "true_value": None, "figure_true_value": None}
    leaky = attack.attack(frame(counts + [{**rate, "figure": "value", "value": 100 * 8 / 164}]))
    assert "narrowed" in kinds(leaky) and any("rate = numerator / denominator" in f for f in leaky.findings)
    safe = attack.attack(frame(counts + [{**rate, "figure": "value", "value": 100 * 10 / 165}]))
    assert not safe.findings


def _wards(seq: int, truths: dict[str, int], states: dict[str, tuple], figure_truths: dict | None = None) -> list[dict]:
    codes = {"A": ("ward", "E05000001"), "B": ("ward", "E05000002"), "C": ("ward", "E05000003"), "D": ("district", "E07000001")}
    return [row(seq, cell(*codes[k]), states[k], truths[k], (figure_truths or {}).get(k), low=1, high=7) for k in states]


def test_one_new_event_between_two_releases_is_revealed_when_a_rounded_total_steps_from_10_to_15():
    before = {"A": 3, "B": 0, "C": 9, "D": 12}
    after = {"A": 4, "B": 0, "C": 9, "D": 13}  # one late referral in ward A
    first = _wards(1, before, {"A": ("suppressed",), "B": ("published", 0, 5), "C": ("suppressed",), "D": ("published", 10, 5)})
    second = _wards(2, after, {"A": ("suppressed",), "B": ("published", 0, 5), "C": ("suppressed",), "D": ("published", 15, 5)})
    assert not attack.attack(frame(first)).findings, "each release alone gives nothing away"
    result = attack.attack(frame(first + second))
    assert ("changed" in kinds(result)) and any("changed between releases" in f and "E05000001" in f for f in result.findings)
    # without the counts behind the figures (no ledger truth), the two figures of the district contradict
    blind = attack.attack(frame([{**r, "true_value": None, "figure_true_value": None} for r in first + second]))
    assert "contradiction" in kinds(blind)


def test_holding_the_published_cells_hides_the_same_change():
    before = {"A": 3, "B": 0, "C": 9, "D": 12}
    after = {"A": 4, "B": 0, "C": 9, "D": 13}
    states = {"A": ("suppressed",), "B": ("published", 0, 5), "C": ("suppressed",), "D": ("published", 10, 5)}
    first = _wards(1, before, states)
    second = _wards(2, after, states, figure_truths=before)  # every cell carried as first sent
    assert not attack.attack(frame(first + second)).findings


def test_findings_name_cells_and_relations_never_figures():
    result = attack.attack(_months_and_quarter(("suppressed",), ("suppressed",)))
    assert result.findings
    for f in result.findings:
        for figure in ("45", "19", "15", "11", " 4 ", "68", "23"):
            assert figure not in f.replace("2026-", "").replace("E07900001", ""), f


# ---------------------------------------------------------------- against the brute-force recipient

def _random_holding(seed: int):
    rng = random.Random(seed)
    wards = rng.choice([2, 3])
    sexes = rng.choice([[], ["F", "M"]]) if wards == 2 else []
    leaves = oracle.leaves_of(wards, sexes)
    cells: dict[str, tuple[int, ...]] = {}
    for geo in list(range(wards)) + ["district"]:
        for b in ["persons"] + [f"sex:{s}" for s in sexes]:
            key = cell("district", "E07000001", b) if geo == "district" else cell("ward", f"E0500000{geo}", b)
            cells[key] = tuple(i for i, (w, s) in enumerate(leaves) if (geo == "district" or w == geo)
                               and (b == "persons" or b == f"sex:{s}"))
    grand = cell("district", "E07000001")
    truths = [tuple(rng.randint(0, 3) for _ in leaves)]
    if rng.random() < 0.6:
        truths.append(tuple(t + (rng.random() < 0.3) * rng.randint(1, 2) for t in truths[0]))
    facts, rows, shown = [], [], {}
    for r, leaves_r in enumerate(truths):
        for c, idx in cells.items():
            t = sum(leaves_r[i] for i in idx)
            held = r == 1 and c != grand and rng.random() < 0.4
            if held:
                state, of = shown[c]
            else:
                kind = shown[c][0][0] if r == 1 and c in shown and \
                    sum(truths[0][i] for i in idx) == t else ("suppressed" if rng.random() < 0.35 and c != grand else "published")
                base = rng.choice([1, 3, 5])
                state, of = (("suppressed",) if kind == "suppressed" else ("published", int(t / base + 0.5) * base, base)), r
            shown[c] = (state, of)
            facts.append((of, c, state))
            rows.append(row(r + 1, c, state, t, sum(truths[of][i] for i in idx)))
    return cells, truths, sorted(set(facts)), grand, frame(rows)


# the whole-point search near a relaxation's (`nearby`) as shipped, and with every relation of three
# or more cells long, so that its first search frees no entry through them
@pytest.mark.parametrize("short", [attack_nearby.SHORT, 2])
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_attacker_proves_exactly_what_the_brute_force_recipient_proves(short, seed):
    cells, truths, facts, grand, holding = _random_holding(seed)
    expected = oracle.analyse(cells, truths, facts, grand)
    old = attack_solve.MAX_BLOCK_FINDINGS, attack_nearby.SHORT
    attack_solve.MAX_BLOCK_FINDINGS, attack_nearby.SHORT = 10**6, short
    try:
        result = attack.attack(holding)
    finally:
        attack_solve.MAX_BLOCK_FINDINGS, attack_nearby.SHORT = old
    found = {(c, int(t), k) for c, _, t, k in result.flags if k in ("not_zero", "zero", "narrowed", "changed")}
    assert found == {(c, int(t), k) for c, t, k in expected}, result.findings


def test_a_hidden_count_whose_least_value_is_still_small_is_not_zero_and_a_finding():
    # July 2 and September 3 published exactly (suppression range 4-7), August and the quarter hidden:
    # the quarter is at least 5, inside the range, so the recipient tells it from 0; August can be 0
    d = ("district", "E07900001")
    rows = [row(1, cell(*d, "age:18-64", "2026-07-01", "month"), ("published", 2, 1), 2, low=4, high=7),
            row(1, cell(*d, "age:18-64", "2026-08-01", "month"), ("suppressed",), 4, low=4, high=7),
            row(1, cell(*d, "age:18-64", "2026-09-01", "month"), ("published", 3, 1), 3, low=4, high=7),
            row(1, cell(*d, "age:18-64", "2026-07-01", "quarter"), ("suppressed",), 9, low=4, high=7)]
    found = {(json.loads(c)["period_type"], k) for c, _, _, k in attack.attack(frame(rows)).flags}
    assert found == {("quarter", "not_zero")}


def test_the_random_holdings_give_something_away_often_enough_to_test_the_attacker():
    leaking = sum(bool(oracle.analyse(*_random_holding(s)[:4])) for s in range(40))
    assert 10 <= leaking <= 38


def test_an_integer_program_stopped_by_its_node_limit_gives_the_whole_point_it_found_if_it_holds(monkeypatch):
    # total = a + b over whole counts, total 3..5: HiGHS reports the program stopped by its node limit with a
    # point in hand; that point is a witness once it keeps every row, and without one nothing is proven
    # either way: the program counts as having no whole point (a finding) and is counted as limited
    import numpy as np

    prog = attack_solve._Program([0, 1, 2], [("eq", 0, [1, 2])], [], np.array([[3.0, 5.0], [0.0, 9.0], [0.0, 9.0]]),
                                 attack_solve.Attack())
    real = attack_solve.milp

    def stopped(shift):
        def run(*args, **kwargs):
            assert "time_limit" not in kwargs["options"] and kwargs["options"]["node_limit"] == attack_solve.MILP_NODES
            res = real(*args, **kwargs)
            res.status, res.x = 1, None if shift is None else res.x + shift
            return res
        return run

    monkeypatch.setattr(attack_solve, "milp", stopped(np.zeros(3)))
    x = prog.solve(np.array([1.0, 0.0, 0.0]), integral=True)
    assert x is not None and x[0] == x[1] + x[2] and 3 <= x[0] <= 5 and prog.result.limited == 0
    monkeypatch.setattr(attack_solve, "milp", stopped(np.array([1.0, 0.0, 0.0])))  # a point off its row
    assert prog.solve(np.array([1.0, 0.0, 0.0]), integral=True) is None
    monkeypatch.setattr(attack_solve, "milp", stopped(None))  # no point by the limit
    assert prog.solve(np.array([1.0, 0.0, 0.0]), integral=True) is None and prog.result.limited == 2
