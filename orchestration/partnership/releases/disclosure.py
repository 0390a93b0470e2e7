"""Statistical disclosure control for aggregate outputs, as typed columns.

A count is published as three columns: the value (null when suppressed), whether it was
suppressed, and the rounding base applied. Never a magic string in a numeric column.

Primary suppression hides counts in [low, high]. Secondary suppression then hides further
cells so that no suppressed cell can be worked out from the margins the protocol declares
(e.g. wards adding up to the district, sexes adding up to persons): each margin is a set of
linear equations `total = sum(members)`, and cells are added to the suppressed set until no
suppressed cell is determined by the published ones — neither by an equation with a single
unknown nor by combining equations (checked by sparse elimination of the equations' unknown part: `determined`).
"""

from __future__ import annotations

import heapq
from collections import defaultdict

import numpy as np
import polars as pl


def round_to_base(x: pl.Expr, base: int) -> pl.Expr:
    """Round half up to the nearest multiple of `base` (7.5 → 10 with base 5)."""
    return ((x.cast(pl.Float64) / base + 0.5).floor() * base).cast(pl.Int64)


def margin_equations(df: pl.DataFrame, margins: list[dict]) -> list[tuple[int, list[int]]]:
    """(total row, member rows) for every group of every margin that has both."""
    if not margins or df.height == 0:
        return []
    equations = []
    for m in margins:
        values = df[m["column"]].cast(pl.Utf8).to_list()
        keys = df.select(m["by"]).rows()
        totals: dict[tuple, list[int]] = defaultdict(list)
        members: dict[tuple, list[int]] = defaultdict(list)
        wanted = set(m.get("members") or [])
        prefix = m.get("members_prefix")
        for i, (v, k) in enumerate(zip(values, keys)):
            if v is None:
                continue
            if v == m["total"]:
                totals[k].append(i)
            elif v in wanted or (prefix is not None and v.startswith(prefix)):
                members[k].append(i)
        for k, tot in totals.items():
            if members.get(k):
                equations += [(t, members[k]) for t in tot]
    return equations


def _linked(eqs: list[int], cells_of) -> list[list[int]]:
    """Equation indices grouped by the cells they share (union-find over cells), groups in
    order of their first equation; each group is solved on its own."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in eqs:
        cells = cells_of(e)
        for c in cells[1:]:
            parent[find(c)] = find(cells[0])
    groups: dict[int, list[int]] = defaultdict(list)
    for e in eqs:
        groups[find(cells_of(e)[0])].append(e)
    return list(groups.values())


_TOL = 1e-9
_TRIALS = 3  # random null vectors per system: a column they all leave at zero is determined


def determined(rows: list[dict[int, float]], n: int) -> list[int]:
    """Columns j (of `n`) whose unit vector e_j lies in the span of `rows` (sparse: column -> coefficient),
    i.e. the unknowns that the equations `rows · x = b` pin down whatever the other unknowns are.

    e_j is in the row space exactly when x_j = 0 for every x with `rows · x = 0`. Sparse elimination to
    an echelon form (the shortest row first, and in it, among its larger entries, the column in the
    fewest rows: fill-in stays small, and unit pivots keep these ±1 systems exact) leaves free columns
    (never determined) and pivot columns; a few null vectors, from random values of the free columns
    solved back through the echelon form, show every pivot column some null vector moves. One a null
    vector moves is not determined; a determined one is zero in all of them. Random values could only
    cancel to a zero by chance (probability about 1e-9 per trial; `_TRIALS` trials, fixed seed), and
    that errs towards hiding more. Linear in the rows' entries after fill-in, where dense Gauss-Jordan
    costs rows × columns × rank."""
    live = {i: {c: float(v) for c, v in r.items() if abs(v) > _TOL} for i, r in enumerate(rows)}
    live = {i: r for i, r in live.items() if r}
    where: dict[int, set[int]] = defaultdict(set)  # column -> the live rows holding it
    for i, r in live.items():
        for c in r:
            where[c].add(i)
    heap = [(len(r), i) for i, r in live.items()]
    heapq.heapify(heap)
    echelon: list[tuple[int, float, np.ndarray, np.ndarray]] = []  # pivot, its coefficient, the others
    while heap:
        size, i = heapq.heappop(heap)
        r = live.get(i)
        if r is None or len(r) != size:
            continue  # stale entry: the row changed or was used
        del live[i]
        for c in r:
            where[c].discard(i)
        big = max(abs(v) for v in r.values())
        p = min((c for c, v in r.items() if abs(v) >= 0.1 * big),
                key=lambda c: (len(where[c]), abs(r[c]) != 1.0, c))
        pv = r[p]
        for j in sorted(where[p]):
            s = live[j]
            f = s[p] / pv
            for c, v in r.items():
                nv = s.get(c, 0.0) - f * v
                if abs(nv) <= _TOL:
                    if c in s:
                        del s[c]
                        where[c].discard(j)
                else:
                    if c not in s:
                        where[c].add(j)
                    s[c] = nv
            if s:
                heapq.heappush(heap, (len(s), j))
            else:
                del live[j]  # a combination of the rows before it
        others = [c for c in r if c != p]
        echelon.append((p, pv, np.array(others, dtype=np.int64), np.array([r[c] for c in others])))
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=(n, _TRIALS))
    moved = np.ones(n, dtype=bool)  # free columns move in every null vector
    for p, pv, cols, vals in reversed(echelon):  # a pivot row holds only later pivots and free columns
        terms = vals[:, None] * x[cols]
        total = terms.sum(axis=0)
        zero = np.abs(total) <= _TOL * np.maximum(1.0, np.abs(terms).sum(axis=0))
        x[p] = np.where(zero, 0.0, -total / pv)  # a zero kept exact, so rounding never spreads
        moved[p] = not zero.all()
    return [int(j) for j in np.flatnonzero(~moved)]


def determined_columns(a: np.ndarray) -> list[int]:
    """`determined` of a dense matrix's rows."""
    a = np.asarray(a, dtype=float)
    return determined([{int(c): float(row[c]) for c in np.flatnonzero(row)} for row in a], a.shape[1] if a.ndim == 2 else 0)


class _Suppressor:
    """Secondary suppression of one connected group of equations (cells shared between them)."""

    def __init__(self, values: list[int | None], out: list[bool], equations: list[tuple[int, list[int]]],
                 forced: dict | None = None):
        self.values, self.out = values, out
        self.eqs = [(t, *ms) for t, ms in equations]  # total first
        self.cell_eqs: dict[int, list[int]] = defaultdict(list)
        for e, cells in enumerate(self.eqs):
            for c in cells:
                self.cell_eqs[c].append(e)
        self.hidden = [sum(out[c] for c in cells) for cells in self.eqs]
        self.single = [e for e, h in enumerate(self.hidden) if h == 1]
        heapq.heapify(self.single)
        self.dirty = {c for c in self.cell_eqs if out[c]}
        # cells the equations fix even with every cell suppressed (e.g. a total whose only member row is absent
        # elsewhere): no suppression can protect them, so they are not chased (the audit reports them)
        # (they depend on the equations alone: `forced` keeps them for the next count of the same table)
        key = tuple(self.eqs)
        found = forced.get(key) if forced is not None else None
        if found is None:
            found = frozenset(self.determined(list(range(len(self.eqs))), sorted(self.cell_eqs), lambda c: True))
            if forced is not None:
                forced[key] = found
        self.forced = found

    def determined(self, eqs: list[int], cells: list[int], unknown) -> list[int]:
        """Cells (of `cells`, the unknown ones of `eqs`) that the equations `eqs` pin down."""
        col = {c: j for j, c in enumerate(cells)}
        rows = []
        for e in eqs:
            t, *ms = self.eqs[e]
            row: dict[int, float] = defaultdict(float)
            if unknown(t):
                row[col[t]] += 1.0
            for c in ms:
                if unknown(c):
                    row[col[c]] -= 1.0
            rows.append(row)
        return [cells[j] for j in determined(rows, len(cells))]

    def hide(self, c: int) -> None:
        self.out[c] = True
        self.dirty.add(c)
        for e in self.cell_eqs[c]:
            self.hidden[e] += 1
            if self.hidden[e] == 1:
                heapq.heappush(self.single, e)

    def cost(self, c: int) -> tuple:
        """Rank of a published cell as the one to hide next: the fewest equations it would leave with a
        single unknown (each forces another suppression), then the smallest non-zero count, then the
        smallest zero, members before totals, then the row order (so reruns are identical)."""
        v = self.values[c]
        opened = sum(1 for e in self.cell_eqs[c] if self.hidden[e] == 0)
        return (opened, v == 0, v, c)

    def pick(self, equations: list[int]) -> int | None:
        """The published cell of `equations` to hide; a cell with no value (never published as a number)
        only when nothing else is left."""
        cand = {c for e in equations for c in self.eqs[e] if not self.out[c]}
        known = [c for c in cand if self.values[c] is not None]
        if known:
            return min(known, key=self.cost)
        return min(cand) if cand else None

    def single_unknowns(self) -> bool:
        """Close every equation with exactly one suppressed cell (it would give that cell away)."""
        while self.single:
            e = heapq.heappop(self.single)
            if self.hidden[e] != 1:
                continue
            c = self.pick([e])
            if c is not None:
                self.hide(c)
        return True

    def linear(self) -> bool:
        """Find cells determined by combining equations; close one per group of linked suppressed
        cells. False when every group is safe."""
        live = [e for e, h in enumerate(self.hidden) if h >= 2]
        groups = _linked(live, lambda e: [c for c in self.eqs[e] if self.out[c]])
        dirty, self.dirty = self.dirty, set()
        changed = False
        for eqs in groups:  # in order of their first equation, as `live` is sorted
            cells = sorted({c for e in eqs for c in self.eqs[e] if self.out[c]})
            if not dirty.intersection(cells):
                continue  # checked safe before and unchanged since (hiding more never determines an old cell)
            det = [c for c in self.determined(eqs, cells, self.out.__getitem__) if c not in self.forced]
            if not det:
                continue
            c = min(det)
            pick = self.pick(self.cell_eqs[c])
            pick = self.pick(eqs) if pick is None else pick
            if pick is None:
                continue  # every cell around it is suppressed already: suppression cannot help (the audit says so)
            self.hide(pick)
            changed = True
        return changed


def secondary(values: list[int | None], suppressed: list[bool], equations: list[tuple[int, list[int]]],
              forced: dict | None = None) -> list[bool]:
    """Suppress more cells until no suppressed cell can be recovered from the equations.

    `values` are the true counts (used only to choose which cells to sacrifice); nulls are treated
    as published (known) cells, as an attacker would. Deterministic: same input, same output.
    `forced`: a dict shared by the calls for the counts of one table (the same equations), which
    keeps what depends on the equations alone."""
    out = list(suppressed)
    for comp in _linked(list(range(len(equations))), lambda e: [equations[e][0], *equations[e][1]]):
        eqs = [equations[e] for e in comp]
        if not any(out[c] for t, ms in eqs for c in (t, *ms)):
            continue
        s = _Suppressor(values, out, eqs, forced)
        while s.single_unknowns() and s.linear():
            pass
    return out


def apply(df: pl.DataFrame, counts: list[str], derived: list[str], low: int, high: int, base: int,
          margins: list[dict] | None = None, equations: list[tuple[int, list[int]]] | None = None) -> pl.DataFrame:
    """Suppress counts in [low, high], then secondary suppression over `margins` and the further
    `equations` (total row, member rows: the table's structure, `structure.equations`), round the
    rest to `base`, and withhold derived values (rates, intervals) of any row with a suppressed count."""
    equations = _unique(margin_equations(df, margins or []) + list(equations or []))
    flags, forced = {}, {}
    for c in counts:
        values = df[c].to_list()
        primary = [v is not None and low <= v <= high for v in values]
        flags[c] = secondary(values, primary, equations, forced) if equations else primary
    out = df.with_columns([pl.Series(f"{c}_suppressed", flags[c], dtype=pl.Boolean) for c in counts])
    exprs = []
    for c in counts:
        exprs += [
            pl.when(pl.col(f"{c}_suppressed")).then(None).otherwise(round_to_base(pl.col(c), base)).alias(c),
            pl.lit(base, dtype=pl.Int64).alias(f"{c}_rounding_base"),
        ]
    out = out.with_columns(exprs) if exprs else out
    if derived:
        any_suppressed = pl.any_horizontal([pl.col(f"{c}_suppressed") for c in counts]) if counts else pl.lit(False)
        out = out.with_columns(
            [pl.when(any_suppressed).then(None).otherwise(pl.col(d)).alias(d) for d in derived]
            + [any_suppressed.alias("derived_withheld")]
        )
    return out


def _unique(equations: list[tuple[int, list[int]]]) -> list[tuple[int, list[int]]]:
    """Each equation once (a declared margin and the same relation found in the structure)."""
    seen, out = set(), []
    for t, ms in equations:
        key = (t, frozenset(ms))
        if key not in seen:
            seen.add(key)
            out.append((t, sorted(ms)))
    return out


def column_order(columns: list[str], counts: list[str], derived: list[str]) -> list[str]:
    out = []
    for c in columns:
        out.append(c)
        if c in counts:
            out += [f"{c}_suppressed", f"{c}_rounding_base"]
    if derived:
        out.append("derived_withheld")
    return out
