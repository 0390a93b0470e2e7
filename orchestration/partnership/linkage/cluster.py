"""Clustering profiles into people, and keeping people's ids from one night to the next.

Links are applied strongest first (NHS number, UPN, agency person id, UPRN + date of birth,
then probabilistic pairs by falling probability) with a union-find that refuses a link which
would put two different valid NHS numbers, or two different UPNs, in one person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

NO_VALUE = -1


class ConstrainedUnionFind:
    """Union-find over n nodes; each node may carry an NHS number code and a UPN code (>= 0),
    and no component may hold two different codes of either kind ("cannot link")."""

    def __init__(self, nhs: np.ndarray, upn: np.ndarray):
        n = len(nhs)
        self.parent = np.arange(n, dtype=np.int64)
        self.nhs = np.asarray(nhs, dtype=np.int64).copy()
        self.upn = np.asarray(upn, dtype=np.int64).copy()
        self.method = np.full(n, -1, dtype=np.int16)
        self.probability = np.full(n, np.nan)
        self.refused = 0
        self.refused_at = np.zeros(n, dtype=np.int32)  # refused links, counted on the smaller node

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return int(root)

    def union(self, a: int, b: int, method: int, probability: float = np.nan) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            self._label(a, b, method, probability)
            return True
        for codes in (self.nhs, self.upn):
            if codes[ra] != NO_VALUE and codes[rb] != NO_VALUE and codes[ra] != codes[rb]:
                self.refused += 1
                self.refused_at[min(a, b)] += 1
                return False
        if ra > rb:
            ra, rb = rb, ra
        self.parent[rb] = ra
        for codes in (self.nhs, self.upn):
            if codes[ra] == NO_VALUE:
                codes[ra] = codes[rb]
        self._label(a, b, method, probability)
        return True

    def _label(self, a: int, b: int, method: int, probability: float) -> None:
        for x in (a, b):
            if self.method[x] < 0:
                self.method[x] = method
                self.probability[x] = probability

    def union_all(self, left: Iterable[int], right: Iterable[int], method: int,
                  probabilities: Iterable[float] | None = None) -> int:
        done = 0
        if probabilities is None:
            for a, b in zip(left, right):
                done += self.union(int(a), int(b), method)
        else:
            for a, b, p in zip(left, right, probabilities):
                done += self.union(int(a), int(b), method, float(p))
        return done

    def roots(self) -> np.ndarray:
        return np.fromiter((self.find(i) for i in range(len(self.parent))), dtype=np.int64, count=len(self.parent))


def assign_stable_ids(n_groups: int, counts: Sequence[tuple[int, str, int]], first_rank: Sequence[int],
                      next_number: int, prefix: str, width: int = 9) -> tuple[list[str], int]:
    """An id per group, keeping last night's ids.

    `counts` holds (group, previous id, members of the group that had that id last night);
    `first_rank[g]` is a stable rank of group g's first member, used to number new groups in
    a reproducible order. Each previous id goes to the group holding most of its members
    (ties: the smaller id, then the smaller group), each group keeps at most one, and groups
    left without one get new ids numbered on from `next_number`. Returns the ids, indexed by
    group, and the next free number."""
    ids: list[str | None] = [None] * n_groups
    used: set[str] = set()
    for g, p, _ in sorted(counts, key=lambda c: (-c[2], c[1], c[0])):
        if ids[g] is None and p not in used:
            ids[g] = p
            used.add(p)
    for g in np.argsort(np.asarray(first_rank, dtype=np.int64), kind="stable").tolist():
        if ids[g] is None:
            ids[g] = f"{prefix}{next_number:0{width}d}"
            next_number += 1
    return ids, next_number  # type: ignore[return-value]
