"""The board releases of one demo night, attacked as a board member with a spreadsheet would:
derived figures give back no count, no suppressed cell is solved from a relation the table's
structure implies, small areas carry pooled values, and no file carries an unprotected count.

Oracles: tests/oracles/phe_methods.py on the published counts; the warehouse's exact counts (the
truth the attack is after); exact elimination written here over relations written out by hand."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict

import duckdb
import numpy as np
import polars as pl
import pytest

from orchestration.partnership.releases.protocols import load_protocols
from tests.conftest import DEMO_RUN_DATE
from tests.oracles import phe_methods as phe

BOARDS = ("falls-board", "safeguarding-board")
KEY = ["indicator_id", "period_type", "period_start", "geography_type", "geography_code", "breakdown"]


def _release(settings, pid: str) -> pl.DataFrame:
    return pl.read_parquet(settings.releases_dir / pid / DEMO_RUN_DATE.isoformat() / "parquet" / "indicator_values.parquet")


def _truth(settings) -> dict[tuple, dict]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        df = con.sql("select * from marts.fct_indicator_values").pl()
    return {tuple(r[k] for k in KEY): r for r in df.iter_rows(named=True)}


def _close(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9))


@pytest.mark.parametrize("pid", BOARDS)
def test_every_published_percentage_and_interval_is_that_of_the_published_counts(demo_night, pid):
    settings, _ = demo_night
    checked = 0
    for r in _release(settings, pid).filter(pl.col("value").is_not_null()).iter_rows(named=True):
        if r["unit"] != "percent":
            continue
        x, n = r["numerator"], r["denominator"]
        assert _close(r["value"], 100 * x / n)
        assert _close(r["lower_ci"], 0.0 if x == 0 else 100 * phe.wilson_lower(x, n))
        assert _close(r["upper_ci"], 100.0 if x == n else 100 * phe.wilson_upper(x, n))
        checked += 1
    assert checked >= 5


def test_the_issue_attack_on_percentages_finds_the_published_counts_and_never_the_true_ones(demo_night):
    """Within the rounding (published ± 2 for base 5), the pairs whose percentage is the published
    value are the published pair: never the true pair when it differs. The warehouse's own value
    singles the true pair out on many rows, so the attack is real."""
    settings, _ = demo_night
    truth = _truth(settings)
    pinned_by_truth = 0
    for pid in BOARDS:
        for r in _release(settings, pid).filter(pl.col("value").is_not_null() & (pl.col("unit") == "percent")
                                                & (pl.col("period_type") != "rolling_12_months")).iter_rows(named=True):
            t = truth[tuple(r[k] for k in KEY)]
            box = [(x, n) for x, n in itertools.product(range(r["numerator"] - 2, r["numerator"] + 3),
                                                        range(r["denominator"] - 2, r["denominator"] + 3)) if 0 <= x <= n and n > 0]
            consistent = {(x, n) for x, n in box if _close(100 * x / n, r["value"])}
            assert (r["numerator"], r["denominator"]) in consistent
            if (t["numerator"], t["denominator"]) != (r["numerator"], r["denominator"]):
                # the attack singles out nothing but what was published (it may find the true pair among
                # others, as 0 of any n is 0 %, never the true pair alone)
                assert consistent != {(t["numerator"], t["denominator"])}
                if t["value"] is not None and {(x, n) for x, n in box if _close(100 * x / n, t["value"])} == \
                        {(t["numerator"], t["denominator"])}:
                    pinned_by_truth += 1
    assert pinned_by_truth >= 3, "the warehouse's values would have given the true counts back"


def test_a_standardised_rate_is_published_only_from_band_counts_rounded_to_the_published_count(demo_night):
    """Every FALLS-01 row with a published count of 10 or more: its rate is that of some rounding of
    its bands' counts (each down or up to a multiple of 5) adding up to the published count
    (phe_methods.dsr), or, when a band's count is from 1 to 7, there is none."""
    settings, _ = demo_night
    rows = _release(settings, "falls-board").filter((pl.col("indicator_id") == "FALLS-01") & ~pl.col("derived_withheld")
                                                    & (pl.col("numerator") >= 10))
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        bands = con.sql("select * from marts.fct_indicator_bands order by band").pl()
    seen = {"published": 0, "withheld": 0}
    for r in rows.iter_rows(named=True):
        mine = bands.filter((pl.col("geography_type") == r["geography_type"]) & (pl.col("geography_code") == r["geography_code"])
                            & (pl.col("breakdown") == r["breakdown"]) & (pl.col("period_start") >= r["period_start"])
                            & (pl.col("period_start") <= r["period_end"])
                            & (pl.col("period_type") == ("quarter" if r["period_type"] == "rolling_12_months" else r["period_type"])))
        per_band = mine.group_by("band", maintain_order=True).agg(pl.col("events").sum(), pl.col("person_years").sum(),
                                                                 pl.col("standard_weight").first())
        events = per_band["events"].to_list()
        if any(1 <= x <= 7 for x in events):
            assert (r["value"], r["lower_ci"], r["upper_ci"]) == (None, None, None)
            seen["withheld"] += 1
            continue
        matches = 0
        for choice in itertools.product(*[(x,) if x % 5 == 0 else (x - x % 5, x - x % 5 + 5) for x in events]):
            if sum(choice) == r["numerator"]:
                d = phe.dsr(list(choice), per_band["person_years"].to_list(), per_band["standard_weight"].to_list())
                matches += _close(d.value, r["value"]) and _close(d.lower, r["lower_ci"]) and _close(d.upper, r["upper_ci"])
        assert matches >= 1
        seen["published"] += 1
    assert sum(seen.values()) >= 3, seen


def _relations(rows: list[dict]) -> list[tuple[int, list[int]]]:
    """Written out by hand: months and quarters within the periods that contain them exactly, wards
    within the district, sexes and age groups within persons."""
    index = {tuple(r[k] for k in KEY): i for i, r in enumerate(rows)}
    out = []
    by_cell = defaultdict(list)
    for i, r in enumerate(rows):
        by_cell[(r["indicator_id"], r["geography_code"], r["breakdown"])].append(i)
    for idx in by_cell.values():
        for i in idx:
            for ptype in ("month", "quarter"):
                inside = [j for j in idx if rows[j]["period_type"] == ptype and j != i
                          and rows[i]["period_start"] <= rows[j]["period_start"] and rows[j]["period_end"] <= rows[i]["period_end"]]
                days = sum((rows[j]["period_end"] - rows[j]["period_start"]).days + 1 for j in inside)
                if inside and rows[i]["period_type"] != ptype and days == (rows[i]["period_end"] - rows[i]["period_start"]).days + 1:
                    out.append((i, inside))
    for i, r in enumerate(rows):
        if r["geography_type"] == "district":
            wards = [j for j, s in enumerate(rows) if s["geography_type"] == "ward" and s["indicator_id"] == r["indicator_id"]
                     and s["period_type"] == r["period_type"] and s["period_start"] == r["period_start"] and s["breakdown"] == r["breakdown"]]
            if wards:
                out.append((i, wards))
        if r["breakdown"] == "persons":
            for dim in ("sex:", "age:"):
                parts = [j for k, j in index.items() if k[:5] == tuple(r[c] for c in KEY[:5]) and k[5].startswith(dim)]
                if parts:
                    out.append((i, parts))
    return out


P = 2_147_483_647  # a prime: rank over GF(P) equals rank over the rationals for these 0/±1 systems but by chance


def _pinned_mod_p(rows: list[list[int]], n: int) -> set[int]:
    """Unknowns a linear system pins down: reduced row echelon form over GF(P) (int64: every
    product of two residues fits), a row with a single non-zero entry."""
    if not rows:
        return set()
    a = np.array(rows, dtype=np.int64) % P
    r, pivots = 0, []
    for c in range(n):
        nz = np.flatnonzero(a[r:, c]) + r
        if nz.size == 0:
            continue
        a[[r, nz[0]]] = a[[nz[0], r]]
        a[r] = (a[r] * pow(int(a[r, c]), P - 2, P)) % P
        f = a[:, c].copy()
        f[r] = 0
        k = np.flatnonzero(f)
        if k.size:
            a[k] = (a[k] - (f[k, None] * a[r][None, :]) % P) % P
        pivots.append(c)
        r += 1
        if r == a.shape[0]:
            break
    return {c for k, c in enumerate(pivots) if np.count_nonzero(a[k, :n]) == 1}


@pytest.mark.parametrize("pid", BOARDS)
def test_no_suppressed_cell_is_solved_from_the_relations_the_table_implies(demo_night, pid):
    """The issue's FALLS-04 attack (a suppressed August from its quarter less the other months), and
    every other relation the table implies, with the published values: nothing is pinned."""
    settings, _ = demo_night
    df = _release(settings, pid)
    rows = df.to_dicts()
    relations = _relations(rows)
    assert any(rows[t]["period_type"] == "quarter" and rows[ms[0]]["period_type"] == "month" for t, ms in relations) \
        or pid == "safeguarding-board"
    for count in ("numerator", "denominator"):
        hidden = [r[f"{count}_suppressed"] for r in rows]
        # groups of relations linked by hidden cells, each solved on its own
        parent = {}

        def find(x):
            while parent.setdefault(x, x) != x:
                x = parent[x]
            return x
        live = []
        for t, ms in relations:
            cells = [c for c in (t, *ms) if hidden[c]]
            if cells:
                live.append((t, ms))
                for c in cells[1:]:
                    parent[find(c)] = find(cells[0])
        groups = defaultdict(list)
        for t, ms in live:
            groups[find(next(c for c in (t, *ms) if hidden[c]))].append((t, ms))
        for eqs in groups.values():
            unknown = sorted({c for t, ms in eqs for c in (t, *ms) if hidden[c]})
            col = {c: j for j, c in enumerate(unknown)}
            system = []
            for t, ms in eqs:
                coef = [0] * len(unknown)
                for c, sign in [(t, 1)] + [(m, -1) for m in ms]:
                    if hidden[c]:
                        coef[col[c]] += sign
                system.append(coef)
            assert not _pinned_mod_p(system, len(unknown)), f"{pid}.{count}: a suppressed cell is pinned"


@pytest.mark.parametrize("pid", BOARDS)
def test_wards_carry_values_over_the_pooled_12_months_and_pooled_counts_add_up_the_quarters(demo_night, pid):
    settings, _ = demo_night
    df = _release(settings, pid)
    truth = _truth(settings)
    pooled = df.filter(pl.col("period_type") == "rolling_12_months")
    wards = pooled.filter((pl.col("geography_type") == "ward") & (pl.col("breakdown") == "persons"))
    assert wards.height and wards["value"].is_not_null().sum() >= 1, "no ward has a pooled value"
    for r in pooled.filter(~pl.col("numerator_suppressed")).iter_rows(named=True):
        quarters = [v for k, v in truth.items() if k[0] == r["indicator_id"] and k[1] == "quarter"
                    and r["period_start"] <= k[2] <= r["period_end"] and k[3:] == (r["geography_type"], r["geography_code"], r["breakdown"])]
        # a pooled count is within half its rounding base of the true sum: base 5 when rounded on its
        # own, n x 4 + 1 when it is the sum of its n published quarters not published 0 (each within 2)
        assert len(quarters) == 4 and abs(r["numerator"] - sum(q["numerator"] for q in quarters)) <= r["numerator_rounding_base"] / 2
        published = df.filter((pl.col("indicator_id") == r["indicator_id"]) & (pl.col("period_type") == "quarter")
                              & pl.col("period_start").is_between(r["period_start"], r["period_end"])
                              & (pl.col("geography_code") == r["geography_code"]) & (pl.col("breakdown") == r["breakdown"]))
        if published.height == 4 and not published["numerator_suppressed"].any():
            assert r["numerator"] == published["numerator"].sum()
            assert r["numerator_rounding_base"] == 4 * max(1, (published["numerator"] != 0).sum()) + 1


def test_the_board_pack_shows_wards_over_the_pooled_period_and_its_numbers_agree_as_printed(demo_night):
    import orchestration.partnership.boardpack.model as model
    from orchestration.partnership.boardpack.numbers import fmt_value

    settings, _ = demo_night
    protocols = load_protocols(settings.protocols_dir)
    for pid in BOARDS:
        pack = model.load(settings.releases_dir / pid / DEMO_RUN_DATE.isoformat(), protocols[pid])
        with_wards = [s for s in pack.indicators if s.wards.wards]
        assert with_wards and all(s.wards.wards[0][0].period_type == "rolling_12_months" for s in with_wards
                                  if any(c.period_type == "rolling_12_months" for c, _ in s.wards.wards))
        for s in pack.indicators:
            cells = s.trend + s.breakdowns + [c for c, _ in s.wards.wards]
            for c in cells:
                if c.state == model.SHOWN and s.unit == "percent":
                    assert fmt_value(c.value) == fmt_value(100 * c.numerator / c.denominator), (s.id, c)
            if s.change is not None and s.change.difference is not None:
                assert fmt_value(abs(s.change.difference)) == fmt_value(abs(float(fmt_value(s.latest.value))
                                                                           - float(fmt_value(s.change.previous.value))))


@pytest.mark.parametrize("pid", BOARDS)
def test_no_unprotected_count_is_in_the_data_quality_file(demo_night, pid):
    settings, _ = demo_night
    doc = json.loads((settings.releases_dir / pid / DEMO_RUN_DATE.isoformat() / "data_quality.json").read_text())
    counts = [e[k] for a in doc["agencies"] for e in a["extracts"] for k in ("rows_read", "rows_quarantined")]
    assert counts and any(c for c in counts)
    assert all(c is None or (c % 5 == 0 and not 1 <= c <= 7) for c in counts)
