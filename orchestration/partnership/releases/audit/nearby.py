"""A whole-number point near a relaxation's point: most of the attacker's witnesses without a
full integer program.

A witness is a whole-number point of a block's rows that brings a count to a target. The
relaxation's optimum usually is one but for a few fractional entries, yet rounding those alone
rarely keeps every relation (a three-way table has odd cycles). So the entries sharing a relation
with a fractional one may move by one too, each fractional entry goes down or up, every other
entry stays, and a small integer program (HiGHS through scipy) finds such a point: first with only
the entries sharing a short relation with a fractional one free (the long ones, a district's wards,
still hold), then, when that finds none, with every entry sharing any relation free. A point found
is checked against every row and bound before it is used, so a witness is always a true whole
point; when there is none nearby the caller runs the block's own integer program, so nothing the
attacker proves depends on this search, only how fast it is found.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

EPS = 1e-6
STEP = 1.0  # how far an entry next to a fractional one may move
# HiGHS's branch-and-bound nodes, past which the block's own integer program decides: a limit in
# work, not seconds, so that the same holding gets the same points on any machine under any load
NODES = 200
# rows longer than this (a district's wards, 481 entries at region) do not free their entries in the
# first search: through them a few fractional entries free most of a block, and a search over tens of
# thousands of entries costs seconds where one over the short rows' neighbours costs milliseconds
SHORT = 32


def whole_near(x: np.ndarray, a_eq, a_ub, b_ub: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """A whole point y with `a_eq` y = 0, `a_ub` y ≤ `b_ub`, `lo` ≤ y ≤ `hi`, equal to round(x) but for
    x's fractional entries and those sharing a row with one; None when the search finds none. The
    neighbours through short rows are tried first: a long row (a district's wards) frees most of a
    block, so it only constrains that first search."""
    y = np.round(x)
    frac = np.flatnonzero(np.abs(x - y) >= EPS)
    if frac.size == 0:
        return y if holds(y, a_eq, a_ub, b_ub, lo, hi) else None
    if SHORT is not None:
        z = _search(x, y.copy(), frac, a_eq, a_ub, b_ub, lo, hi, SHORT)
        if z is not None:
            return z
    return _search(x, y, frac, a_eq, a_ub, b_ub, lo, hi, None)


def _search(x: np.ndarray, y: np.ndarray, frac: np.ndarray, a_eq, a_ub, b_ub: np.ndarray, lo: np.ndarray,
            hi: np.ndarray, longest: int | None) -> np.ndarray | None:
    """`whole_near`'s search, the neighbours taken through rows of at most `longest` entries (all when None)."""
    low = np.maximum(np.floor(x), lo)
    high = np.minimum(np.ceil(x), hi)
    near = set(frac.tolist())
    for a in (a_eq, a_ub):
        if a is not None:
            rows = np.flatnonzero(a[:, frac].getnnz(axis=1))
            if longest is not None:
                rows = rows[np.diff(a.indptr)[rows] <= longest]
            near.update(a[rows].indices.tolist())
    free = np.array(sorted(near), dtype=np.int64)
    beside = np.setdiff1d(free, frac)
    low[beside] = np.maximum(y[beside] - STEP, lo[beside])
    high[beside] = np.minimum(y[beside] + STEP, hi[beside])
    if np.any(low[free] > high[free]):
        return None
    rest = y.copy()
    rest[free] = 0.0
    constraints = []
    for a, upper in ((a_eq, False), (a_ub, True)):
        if a is None:
            continue
        sub = a[:, free]
        rows = np.flatnonzero(sub.getnnz(axis=1))
        room = (b_ub if upper else 0.0) - a @ rest
        constraints.append(LinearConstraint(sub[rows], -np.inf if upper else room[rows], room[rows]))
    res = milp(np.zeros(free.size), constraints=constraints, integrality=np.ones(free.size),
               bounds=Bounds(low[free], high[free]), options={"node_limit": NODES})
    if res.x is None:  # none found (a point found before the node limit is checked below like any other)
        return None
    y[free] = np.round(res.x)
    return y if holds(y, a_eq, a_ub, b_ub, lo, hi) else None


def holds(y: np.ndarray, a_eq, a_ub, b_ub: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether whole point `y` keeps every row and bound (the rows' own tolerances are in `b_ub`)."""
    if np.any(y < lo) or np.any(y > hi):
        return False
    if a_eq is not None and np.any(np.abs(a_eq @ y) > 1e-9):
        return False
    return a_ub is None or bool(np.all(a_ub @ y <= b_ub + 1e-9))


class Witnesses:
    """Whole points found by earlier runs, by each unknown's key (cell, figure, count behind it), for
    a caller whose system only widens from run to run (the builder's closing rounds: a hidden count
    loses its bounds, a withheld rate its rows). `solve.block` uses a point again only once it keeps
    every row and bound of the block as it is now (`holds`), so a stale point is never a witness."""

    def __init__(self):
        self.where: dict[tuple, tuple[int, int]] = {}  # key -> (which run's block, its column)
        self.points: list[np.ndarray] = []

    def get(self, keys: list[tuple]) -> list[np.ndarray]:
        """The points of the one earlier block holding every key (none when the keys were not all in one)."""
        found = [self.where.get(k) for k in keys]
        if not found or any(f is None for f in found) or len({f[0] for f in found}) > 1:
            return []
        return list(self.points[found[0][0]][:, [f[1] for f in found]])

    def put(self, keys: list[tuple], points: list[np.ndarray]) -> None:
        if not points:
            return
        self.points.append(np.round(np.stack(points)))
        run = len(self.points) - 1
        self.where.update({k: (run, j) for j, k in enumerate(keys)})
