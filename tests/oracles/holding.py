"""A brute-force recipient: every assignment of whole counts to the smallest cells, tried.

The test oracle for the audit's attacker (`releases/attack.py`), independent of it: no linear
programming, and no relations derived from keys. The table is built from leaves (the finest
cells: ward x sex), every published cell is a known sum of leaves, and every assignment of the
leaves that agrees with what the recipient holds is enumerated. What the recipient can prove is
what holds in every such assignment. Small tables only (a few leaves, small counts).

A holding is a list of releases, each with its leaves' true counts; a `fact` is a figure the
recipient holds about one release's counts: (release index, cell, state), the state being
("suppressed",) or ("published", value, base). A cell whose true count is the same in two
releases is known to be one count (the attacker is given that, as the audit's attacker is).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import product


def rounds_to(x: int, value: float, base: int) -> bool:
    """Half-up rounding to `base` gives `value`."""
    return int(x / base + 0.5) * base == value


def vectors(m: int, most: int):
    """Every tuple of m counts ≥ 0 with a sum of at most `most`."""
    if m == 0:
        yield ()
        return
    for first in range(most + 1):
        for rest in vectors(m - 1, most - first):
            yield (first, *rest)


def analyse(cells: dict[str, tuple[int, ...]], truths: list[tuple[int, ...]], facts: list[tuple[int, str, tuple]],
            grand: str) -> set[tuple[str, int, str]]:
    """(cell, true count, kind) for everything the holding gives away: a suppressed count proven
    `not_zero` or `zero`, a rounded count `narrowed` below its rounding, a count `changed` between
    the two releases. `grand` is a cell holding every leaf, published fresh in every release (it
    bounds the enumeration)."""
    m = len(truths[0])
    value = {c: (lambda leaves, idx=idx: sum(leaves[i] for i in idx)) for c, idx in cells.items()}
    truth = [{c: value[c](t) for c in cells} for t in truths]
    by_release = defaultdict(list)
    for r, c, state in facts:
        by_release[r].append((c, state))

    def ok(r: int, leaves: tuple) -> bool:
        for c, state in by_release[r]:
            x = value[c](leaves)
            if state[0] == "published" and not rounds_to(x, state[1], state[2]):
                return False
        return True

    most = []
    for r in range(len(truths)):
        pub = [s for c, s in by_release[r] if c == grand and s[0] == "published"]
        most.append(int(pub[0][1] + pub[0][2]))
    feasible = [[v for v in vectors(m, most[r]) if ok(r, v)] for r in range(len(truths))]
    if len(truths) == 1:
        joint = [(v,) for v in feasible[0]]
    else:  # the second release's counts joined on every cell whose count did not change
        same = [c for c in cells if truth[0][c] == truth[1][c]]
        index = defaultdict(list)
        for w in feasible[1]:
            index[tuple(value[c](w) for c in same)].append(w)
        joint = [(v, w) for v in feasible[0] for w in index.get(tuple(value[c](v) for c in same), [])]
    found = set()
    for r, c, state in facts:
        seen = {value[c](j[r]) for j in joint}
        if state[0] == "suppressed":
            if min(seen) >= 1:
                found.add((c, truth[r][c], "not_zero"))
            if max(seen) < 1:
                found.add((c, truth[r][c], "zero"))
        else:
            allowed = [x for x in range(0, int(state[1] + state[2]) + 1) if rounds_to(x, state[1], state[2])]
            if min(seen) > min(allowed) or max(seen) < max(allowed):
                found.add((c, truth[r][c], "narrowed"))
    if len(truths) == 2:
        for c in cells:
            if truth[0][c] != truth[1][c] and not any(value[c](v) == value[c](w) for v, w in joint):
                found.add((c, truth[1][c], "changed"))
    return found


def leaves_of(wards: int, sexes: list[str]) -> list[tuple[int, str | None]]:
    return list(product(range(wards), sexes or [None]))
