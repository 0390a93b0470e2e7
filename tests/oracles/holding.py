"""A brute-force recipient: every assignment of whole counts to the smallest cells, tried.

The test oracle for the audit's attacker (`releases/audit/attack.py`), independent of it: no linear
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
from itertools import combinations, product

import numpy as np


def rounds_to(x, value: float, base: int):
    """Half-up rounding to `base` gives `value` (x a number or a numpy array)."""
    return np.floor(x / base + 0.5) * base == value


def vectors(m: int, most: int) -> np.ndarray:
    """Every row of m counts ≥ 0 with a sum of at most `most` (stars and bars: m bars placed among
    most + m slots, each count the gap before its bar, so no grid of (most + 1)^m rows is built)."""
    bars = np.array(list(combinations(range(most + m), m)), dtype=np.int32).reshape(-1, m)
    return np.diff(bars, axis=1, prepend=-1) - 1


def analyse(cells: dict[str, tuple[int, ...]], truths: list[tuple[int, ...]], facts: list[tuple[int, str, tuple]],
            grand: str, cap: int | None = None, top: int | None = None) -> set[tuple[str, int, str]]:
    """(cell, true count, kind) for everything the holding gives away: a suppressed count proven
    `not_zero` or `zero`, a rounded count `narrowed` below its rounding, a count `changed` between
    the two releases. `grand` is a cell holding every leaf (its published figure bounds the
    enumeration; when it is not published, `cap` bounds every count, which makes this recipient
    stronger than the attacker, never weaker: use it where only what is found matters). `top`: the top
    of the suppression range 1..top, when given: a published count is known not to lie in it, and a
    suppressed count proven above it is no finding (it was hidden to protect another; the rule lets a
    recipient know it is not small)."""
    names = list(cells)
    truth = [{c: sum(t[i] for i in cells[c]) for c in names} for t in truths]
    by_release = defaultdict(list)
    for r, c, state in facts:
        by_release[r].append((c, state))
    feasible = []  # per release: the cell values of every assignment of the leaves that fits its facts
    for r in range(len(truths)):
        pub = [s for c, s in by_release[r] if c == grand and s[0] == "published"]
        grid = vectors(len(truths[r]), int(pub[0][1] + pub[0][2]) if pub else cap)
        values = np.stack([grid[:, list(cells[c])].sum(axis=1) for c in names], axis=1)
        keep = np.ones(len(values), dtype=bool)
        for c, state in by_release[r]:
            if state[0] == "published":
                keep &= rounds_to(values[:, names.index(c)], state[1], state[2])
                if top is not None:  # a published count is never in the suppression range
                    keep &= ~((values[:, names.index(c)] >= 1) & (values[:, names.index(c)] <= top))
        feasible.append(values[keep])
    if len(truths) == 1:
        joint, key_ids = [feasible[0]], None
    else:  # the second release's assignments joined on every cell whose count did not change
        same = [k for k, c in enumerate(names) if truth[0][c] == truth[1][c]]
        # Each assignment's key (its values of the unchanged cells) as one id over both releases; the
        # join keeps the assignments whose key the other release has too. Its marginals are all this
        # needs, so the pairs themselves are never listed (there can be billions).
        keys = np.concatenate([feasible[0][:, same], feasible[1][:, same]])
        if same and len(keys):
            ids = np.asarray(np.unique(keys, axis=0, return_inverse=True)[1]).reshape(-1)
        else:  # no unchanged cell: every assignment of one night goes with every one of the other
            ids = np.zeros(len(keys), dtype=np.int64)
        id0, id1 = ids[:len(feasible[0])], ids[len(feasible[0]):]
        common = np.intersect1d(id0, id1)
        keep0, keep1 = np.isin(id0, common), np.isin(id1, common)
        joint, key_ids = [feasible[0][keep0], feasible[1][keep1]], [id0[keep0], id1[keep1]]
    found = set()
    for r, c, state in facts:
        seen = joint[r][:, names.index(c)]
        if state[0] == "suppressed":
            if seen.min() >= 1 and (top is None or seen.min() <= top):
                found.add((c, truth[r][c], "not_zero"))
            if seen.max() < 1:
                found.add((c, truth[r][c], "zero"))
        else:
            allowed = [x for x in range(0, int(state[1] + state[2]) + 1) if rounds_to(x, state[1], state[2])
                       and (top is None or not 1 <= x <= top)]
            if seen.min() > min(allowed) or seen.max() < max(allowed):
                found.add((c, truth[r][c], "narrowed"))
    if len(truths) == 2:
        for k, c in enumerate(names):
            if truth[0][c] == truth[1][c]:
                continue
            # some joined pair (same key) gives the cell the same count on both nights
            width = int(max(joint[0][:, k].max(initial=0), joint[1][:, k].max(initial=0))) + 1
            codes = [key_ids[r].astype(np.int64) * width + joint[r][:, k] for r in (0, 1)]
            if not np.intersect1d(codes[0], codes[1]).size:
                found.add((c, truth[1][c], "changed"))
    return found


def leaves_of(wards: int, sexes: list[str]) -> list[tuple[int, str | None]]:
    return list(product(range(wards), sexes or [None]))
