"""Whether a small system of linear inequalities has a real solution, in exact arithmetic.

The test oracle for the attacker's relaxations (`releases/audit/relaxation.py`): Fourier–Motzkin
elimination over fractions, no floating point and no solver. Each row a·x ≤ b; eliminating a
variable pairs every row where it has a positive coefficient with every row where it has a
negative one, so the system is feasible exactly when the rows left without variables all hold.
Small systems only (a handful of variables: the rows multiply).
"""

from __future__ import annotations

from fractions import Fraction


def feasible(rows: list[tuple[list, object]]) -> bool:
    """Whether some real x has a·x ≤ b for every (a, b) in `rows` (coefficients as exact numbers)."""
    system = _tightest(_normal([Fraction(c) for c in a], Fraction(b)) for a, b in rows)
    n = len(rows[0][0]) if rows else 0
    for k in range(n):
        pos = [r for r in system if r[0][k] > 0]
        neg = [r for r in system if r[0][k] < 0]
        rest = {r for r in system if r[0][k] == 0}
        for ap, bp in pos:
            for an, bn in neg:
                # ap[k] and an[k] are ±1 after `_normal`: their sum has no x_k
                rest.add(_normal([p + q for p, q in zip(ap, an)], bp + bn))
        system = _tightest(rest)
    return all(b >= 0 for _, b in system)


def _tightest(rows) -> set:
    """Of rows with the same coefficients only the one with the least bound (it implies the others)."""
    least: dict = {}
    for a, b in rows:
        if a not in least or b < least[a]:
            least[a] = b
    return set(least.items())


def _normal(a: list[Fraction], b: Fraction) -> tuple[tuple[Fraction, ...], Fraction]:
    """The same row scaled so that its first non-zero coefficient is ±1 (equal rows then coincide)."""
    lead = next((abs(c) for c in a if c != 0), None)
    if lead is None:
        return tuple(a), b
    return tuple(c / lead for c in a), b / lead
