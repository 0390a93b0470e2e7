"""Bounds on a block's whole-number points implied by its rows (activity bound propagation).

Every unknown of the attacker's programs is a whole count, so a bound a row implies can be rounded
inward: what is left holds every whole-number point. `solve` uses them to prove most cells' limits
without a program and to tighten the rest.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import vstack


def tighten(a_eq, a_ub, b_ub: np.ndarray, lo: np.ndarray, hi: np.ndarray, rounds: int = 100):
    """Bounds on whole-number points implied by the rows (`a_eq` x = 0, `a_ub` x ≤ `b_ub`), each row
    bounding each of its columns by the least the row's other columns can contribute (activity
    bound propagation), rounded inward to whole numbers, until nothing moves. A point outside them
    breaks a row or is not whole, so no whole-number point is lost; None when they prove there is none."""
    rows = [(a, np.zeros(a.shape[0])) for a in (a_eq,) if a is not None]
    rows += [(-a_eq, np.zeros(a_eq.shape[0]))] if a_eq is not None else []
    rows += [(a_ub, b_ub)] if a_ub is not None else []
    if not rows:
        return lo, hi
    a = vstack([r[0] for r in rows]).tocsr()
    b = np.concatenate([r[1] for r in rows])
    pos, neg = a.maximum(0).tocsr(), a.minimum(0).tocsr()
    coo = a.tocoo()
    r, c, v = coo.row, coo.col, coo.data
    lo, hi = lo.copy(), hi.copy()
    for _ in range(rounds):
        least = pos @ lo + neg @ hi  # each row's least activity
        if np.any(least > b + 1e-6 * (1 + np.abs(b))):
            return None  # the rows cannot hold together: no whole-number point at all
        # the row less this entry's own least contribution bounds the entry
        rest = least[r] - np.where(v > 0, v * lo[c], v * hi[c])
        bound = (b[r] - rest) / v
        new_hi, new_lo = hi.copy(), lo.copy()
        up = v > 0
        slack = 1e-6 * (1 + np.abs(bound))  # rounding errors of large rows never cut a whole point off
        np.minimum.at(new_hi, c[up], np.floor(bound[up] + slack[up]))
        np.maximum.at(new_lo, c[~up], np.ceil(bound[~up] - slack[~up]))
        if np.any(new_lo > new_hi):
            return None
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            break
        lo, hi = new_lo, new_hi
    return lo, hi
