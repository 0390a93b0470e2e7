"""The attacker's relaxation kept in one HiGHS model (`audit/relaxation.py`) from program to program.

Each of a block's programs changes costs and bounds of one model and starts from the last basis.
What the attacker proves rests on two answers of each program: none (no real point: a limit is
proven) or a point (then it must keep every row and bound). Both are checked here on random small
systems, in a random sequence of programs on one model, against exact arithmetic
(`tests/oracles/polytope.py`, Fourier–Motzkin over fractions); and a program's optimum against the
same program built afresh, as each was before.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from orchestration.partnership.releases.audit.relaxation import Relaxation, RelaxationUnsolved
from tests.oracles import polytope

pytestmark = pytest.mark.dbt_free

N, AIMS, LINK, CAP = 5, [0, 2, 3, 4], (1, 3), 1e7


def _system(rng: random.Random):
    """Two sums (a total less its members, = 0), two inequalities with small whole coefficients, bounds:
    drawn again until the system has a point (as a block of a true holding has)."""
    while True:
        eq, ub, b, lo, hi = _draw(rng)
        if _exactly_feasible(eq, ub, b, lo, hi, None):
            return eq, ub, b, lo, hi


def _draw(rng: random.Random):
    eq = np.zeros((2, N))
    for r in range(2):
        total, *members = rng.sample(range(N), rng.randint(3, 4))
        eq[r, total], eq[r, members] = 1.0, -1.0
    ub = np.array([[rng.randint(-3, 3) for _ in range(N)] for _ in range(2)], dtype=float)
    b = np.array([rng.randint(-2, 8) / 2 for _ in range(2)])
    lo = np.array([float(rng.randint(0, 3)) for _ in range(N)])
    return eq, ub, b, lo, lo + np.array([float(rng.randint(0, 6)) for _ in range(N)])


def _program(rng: random.Random):
    at = (rng.randrange(N), float(rng.randint(-1, 10)), rng.choice((1.0, -1.0))) if rng.random() < 0.7 else None
    toward = None
    if rng.random() < 0.6:
        cols = sorted(rng.sample(AIMS, rng.randint(1, len(AIMS))))
        toward = (cols, [float(rng.randint(0, 9)) for _ in cols], rng.choice((1.0, -1.0)))
    return at, toward, LINK if rng.random() < 0.3 else None


def _bounds(lo, hi, at):
    lo, hi = lo.copy(), hi.copy()
    if at is not None:
        j, t, sign = at
        if sign > 0:
            hi[j] = min(hi[j], t)
        else:
            lo[j] = max(lo[j], t)
    return lo, hi


def _exactly_feasible(eq, ub, b, lo, hi, same) -> bool:
    rows = [(list(a), 0) for a in eq] + [([-c for c in a], 0) for a in eq] + list(zip(map(list, ub), b))
    for j in range(N):
        unit = [0] * N
        unit[j] = 1
        rows += [(unit, hi[j]), ([-c for c in unit], -lo[j])]
    if same is not None:
        diff = [0] * N
        diff[same[0]], diff[same[1]] = 1, -1
        rows += [(diff, 0), ([-c for c in diff], 0)]
    return polytope.feasible(rows)


def _afresh(eq, ub, b, lo, hi, toward, same) -> float:
    """The toward program's optimum, built from nothing as the attacker built each before."""
    cols, tgt, sign = toward
    k = len(cols)
    a_ub = np.zeros((2 + k, N + k))
    a_ub[:2, :N] = ub
    b_ub = np.r_[b, np.array(tgt) if sign > 0 else np.zeros(k)]
    for i, j in enumerate(cols):
        a_ub[2 + i, j], a_ub[2 + i, N + i] = sign, -sign
    a_eq = np.zeros((2 + (same is not None), N + k))
    a_eq[:2, :N] = eq
    if same is not None:
        a_eq[2, same[0]], a_eq[2, same[1]] = 1.0, -1.0
    bounds = np.column_stack([np.r_[lo, np.zeros(k)], np.r_[hi, np.full(k, CAP) if sign > 0 else tgt]])
    res = linprog(np.r_[np.zeros(N), np.full(k, sign)], A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.zeros(len(a_eq)),
                  bounds=bounds, method="highs")
    assert res.status == 0
    return res.fun


def _value(x, toward) -> float:
    cols, tgt, sign = toward
    return float(sum(max(x[j] - t, 0.0) for j, t in zip(cols, tgt))) if sign > 0 else \
        -float(sum(min(x[j], t) for j, t in zip(cols, tgt)))


@pytest.mark.parametrize("seed", range(16))
def test_each_program_on_one_model_has_a_point_exactly_when_the_exact_system_has_one(seed):
    rng = random.Random(seed)
    eq, ub, b, lo, hi = _system(rng)
    model = Relaxation(csr_matrix(eq), csr_matrix(ub), b, lo, hi, AIMS, [LINK], CAP)
    for _ in range(25):
        at, toward, same = _program(rng)
        x = model.solve(at, toward, same)
        low, high = _bounds(lo, hi, at)
        exact = bool(np.all(low <= high)) and _exactly_feasible(eq, ub, b, low, high, same)
        assert (x is not None) == exact, (at, toward, same)
        if x is None:
            continue
        tol = 1e-7
        assert np.all(np.abs(eq @ x) <= tol) and np.all(ub @ x <= b + tol)
        assert np.all(x >= low - tol) and np.all(x <= high + tol)
        if same is not None:
            assert abs(x[same[0]] - x[same[1]]) <= tol
        if toward is not None:
            assert _value(x, toward) == pytest.approx(_afresh(eq, ub, b, low, high, toward, same), abs=1e-6)


def test_the_random_sequences_mix_programs_with_and_without_points():
    with_point = without = 0
    for seed in range(16):
        rng = random.Random(seed)
        eq, ub, b, lo, hi = _system(rng)
        for _ in range(25):
            at, _, same = _program(rng)
            low, high = _bounds(lo, hi, at)
            exact = bool(np.all(low <= high)) and _exactly_feasible(eq, ub, b, low, high, same)
            with_point, without = with_point + exact, without + (not exact)
    assert with_point > 50 and without > 50


def test_a_program_highs_leaves_undecided_stops_the_attacker_instead_of_reading_as_no_point():
    """None means "no real point" and proves a limit; a program stopped short (here: no simplex
    iteration allowed, no presolve to settle it) proves nothing, so it must not come back as None."""
    rng = random.Random(3)
    eq, ub, b, lo, hi = _system(rng)
    model = Relaxation(csr_matrix(eq), csr_matrix(ub), b, lo, hi, AIMS, [LINK], CAP)
    model.highs.setOptionValue("presolve", "off")
    model.highs.setOptionValue("simplex_iteration_limit", 0)
    with pytest.raises(RelaxationUnsolved, match="undecided"):
        model.solve(None, ([0, 2, 3, 4], [9.0, 9.0, 9.0, 9.0], -1.0), None)
