"""The attacker inside the audit: what a recipient can work out from everything it holds.

Input: the recipient's holding (its ledger rows and the new release's figures, as `ledger`
shapes them). Every published count becomes an unknown with its uncertainty: a count published
r with rounding base b lies in [r − b/2, r + b/2) without the suppressed range; a suppressed count
is any count ≥ 0; a published rate (`value`, unit percent or 'per N') that the published counts
do not explain ties its numerator and denominator (v × denominator = k × numerator). The relations
are derived from the cells' keys (`attack_relations`), each one an equation where it is true of
the data, or the inequality that is. The same figure in two tables or two releases is one unknown
while its count is unchanged; a count that changed is a new unknown, and the change is checked.

Then, per independent block of unknowns (connected through relations), linear programming with
HiGHS bounds what the attacker can prove, over the integers (`scipy.optimize.milp` where the
relaxation's answer is not whole). A finding, which blocks the release:

- a suppressed count proven not to be zero, or proven zero (pinned);
- a rounded count narrowed to fewer values than its rounding allows;
- a change in a count between two releases that the holding proves (the change is a count of
  new events);
- figures that contradict each other.

Findings name cells and relations, never figures. This module does not use the release
builder's code.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix, csr_matrix, vstack

from orchestration.partnership.releases.attack_relations import describe, multiplier, relations

CAP = 1e7  # no count reaches it: an upper bound that only keeps the programs bounded
NEW_SEQ = 2**62  # the release being audited, after every release of the ledger
EPS = 1e-6


@dataclass
class Attack:
    findings: list[str] = field(default_factory=list)
    # what was found, for tests and tools: (cell, figure, count behind it or None, kind)
    flags: list[tuple[str, str, float | None, str]] = field(default_factory=list)
    unknowns: int = 0
    blocks: int = 0
    programs: int = 0
    seconds: float = 0.0


def allowed(value: float, base: int, low: int | None, high: int | None) -> tuple[int, int]:
    """The whole counts a figure published `value` with rounding `base` can stand for (half up:
    r − b/2 ≤ x < r + b/2), without the suppressed range (a count there would not be published)."""
    lo, hi = math.ceil(value - base / 2), math.ceil(value + base / 2) - 1
    lo = max(lo, 0)
    if low is not None and high is not None and lo <= high and hi >= low:
        if lo >= low:
            lo = high + 1
        elif hi <= high:
            hi = low - 1
    return lo, hi


class _Model:
    def __init__(self):
        self.index: dict[tuple, int] = {}
        self.keys: list[tuple] = []

    def var(self, cell: str, fig: str, truth) -> int:
        k = (cell, fig, None if truth is None else float(truth))
        if k not in self.index:
            self.index[k] = len(self.keys)
            self.keys.append(k)
        return self.index[k]


def attack(holding: pl.DataFrame, margins: list[dict] | None = None, parents: dict[str, str] | None = None,
           rounded: str = "full_interval") -> Attack:
    """Run the attacker on a holding (columns `seq` and `ledger.SCHEMA`). `rounded`: what must stay
    possible for a rounded count: `full_interval` (every value its rounding allows) or `not_pinned`
    (at least two values)."""
    t0 = time.perf_counter()
    result = Attack()
    if holding.height == 0:
        return result
    rows = holding.sort("seq", maintain_order=True)
    counts = rows.filter(pl.col("kind") == "count")
    cells = {c: json.loads(c) for c in counts["cell"].unique().to_list()}
    table_of: dict[str, str] = {}
    model = _Model()
    timeline: dict[tuple[str, str], list[tuple[int, object]]] = defaultdict(list)
    states: dict[tuple[str, str], list[tuple[int, tuple]]] = defaultdict(list)
    figures: dict[int, set[tuple]] = defaultdict(set)
    for seq, table, cell, fig, value, sup, base, low, high, truth, ftruth in counts.select(
            "seq", "table_name", "cell", "figure", "value", "suppressed", "rounding_base", "suppress_from",
            "suppress_to", "true_value", "figure_true_value").iter_rows():
        table_of.setdefault(cell, table)
        line = timeline[(cell, fig)]
        if not line or line[-1][0] != seq:
            line.append((seq, truth))
        v = model.var(cell, fig, ftruth if ftruth is not None else truth)
        figures[v].add((value, bool(sup), base, low, high))
        states[(cell, fig)].append((seq, (v, value, bool(sup))))

    def truth_at(cell: str, fig: str, seq: int):
        line = timeline[(cell, fig)]
        i = bisect.bisect_right(line, seq, key=lambda x: x[0]) - 1
        return line[i][1] if i >= 0 else _ABSENT

    # relations: each template once per snapshot in which one of its counts changed
    eq_rows: dict[tuple, tuple] = {}
    named: dict[int, list[str]] = defaultdict(list)
    for fig in counts["figure"].unique().to_list():
        of_fig = {c: cells[c] for (c, f) in timeline if f == fig}
        for rel in relations(of_fig, margins, parents):
            members = [rel.total, *rel.members]
            seqs = sorted({s for c in members for s, _ in timeline[(c, fig)]})
            start = max(timeline[(c, fig)][0][0] for c in members)
            for s in seqs:
                if s < start:
                    continue
                truths = [truth_at(c, fig, s) for c in members]
                sense = _sense(truths)
                if sense is None:
                    continue
                vs = [model.var(c, fig, t) for c, t in zip(members, truths)]
                key = (sense, vs[0], tuple(sorted(vs[1:])))
                if key not in eq_rows:
                    eq_rows[key] = (sense, vs[0], vs[1:])
                    label = f"{rel.name} ({describe(cells[rel.total])})"
                    for v in vs:
                        if len(named[v]) < 3 and label not in named[v]:
                            named[v].append(label)
    ratios = _ratios(rows, states, model, cells, named)
    links = []
    for (cell, fig), line in timeline.items():
        known = [(s, t) for s, t in line if t is not None]
        for (s1, t1), (s2, t2) in zip(known, known[1:]):
            if t1 != t2:
                links.append((model.var(cell, fig, t1), model.var(cell, fig, t2)))

    n = len(model.keys)
    result.unknowns = n
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(vs) -> None:
        r = find(vs[0])
        for v in vs[1:]:
            parent[find(v)] = r

    for sense, t, ms in eq_rows.values():
        union([t, *ms])
    for a, b, *_ in ratios:
        union([a, b])
    for a, b in links:
        union([a, b])

    targets: dict[int, tuple[str, int, int]] = {}
    bounds = np.zeros((n, 2))
    bounds[:, 1] = CAP
    for v, states_v in figures.items():
        _targets(v, states_v, model, cells, table_of, bounds, targets, result)

    comps: dict[int, list[int]] = defaultdict(list)
    for v in range(n):
        comps[find(v)].append(v)
    rel_of: dict[int, list[tuple]] = defaultdict(list)
    for r in eq_rows.values():
        rel_of[find(r[1])].append(r)
    ratio_of: dict[int, list[tuple]] = defaultdict(list)
    for r in ratios:
        ratio_of[find(r[0])].append(r)
    link_of: dict[int, list[tuple]] = defaultdict(list)
    for a, b in links:
        link_of[find(a)].append((a, b))
    for root, vs in comps.items():
        if len(vs) == 1 or not (any(v in targets for v in vs) or link_of.get(root)):
            continue
        result.blocks += 1
        _block(vs, rel_of[root], ratio_of[root], link_of[root], bounds, targets, model, cells, table_of, named, result,
               rounded)
    result.seconds = time.perf_counter() - t0
    return result


_ABSENT = object()


def _sense(truths: list) -> str | None:
    """How a relation holds among these counts: 'eq', 'le' (total ≤ Σ members), 'ge', or None when a
    count is not there; assumed an equation when the counts are not known."""
    if any(t is _ABSENT for t in truths):
        return None
    if any(t is None for t in truths):
        return "eq"
    d = truths[0] - sum(truths[1:])
    return "eq" if abs(d) < 0.5 else ("le" if d < 0 else "ge")


def _ratios(rows: pl.DataFrame, states: dict, model: _Model, cells: dict, named: dict) -> list[tuple]:
    """(numerator unknown, denominator unknown, value, k) for each published `value` the published
    counts do not explain: it ties the counts it was computed from."""
    out = {}
    derived = rows.filter((pl.col("kind") == "derived") & (pl.col("figure") == "value") & pl.col("value").is_not_null())
    for seq, cell, v in derived.select("seq", "cell", "value").iter_rows():
        k = multiplier(cells.get(cell, {}).get("unit")) if cell in cells else None
        if k is None:
            continue
        num, den = _state_at(states, cell, "numerator", seq), _state_at(states, cell, "denominator", seq)
        if num is None or den is None:
            continue
        (vn, pn, sn), (vd, pd, sd) = num, den
        if not sn and not sd and pn is not None and pd and abs(v - k * pn / pd) <= 1e-9 * max(1.0, abs(v)):
            continue  # computed from the published counts: it tells nothing more
        tn, td = model.keys[vn][2], model.keys[vd][2]
        if tn is not None and td is not None and (td == 0 or abs(v - k * tn / td) > 1e-6 * max(1.0, abs(v))):
            continue  # not this ratio of the counts (another method): no equation an attacker could use
        out.setdefault((vn, vd, v), (vn, vd, v, k))
        label = f"rate = numerator / denominator ({describe(cells[cell])})"
        for x in (vn, vd):
            if label not in named[x] and len(named[x]) < 3:
                named[x].append(label)
    return list(out.values())


def _state_at(states: dict, cell: str, fig: str, seq: int):
    line = states.get((cell, fig))
    if not line:
        return None
    i = bisect.bisect_right(line, seq, key=lambda x: x[0]) - 1
    return line[i][1] if i >= 0 else None


def _targets(v: int, states_v: set, model: _Model, cells: dict, table_of: dict, bounds: np.ndarray,
             targets: dict, result: Attack) -> None:
    """Bounds of unknown `v` from its figures, and what must stay possible: (kind, low target, high target)."""
    cell, fig, _ = model.keys[v]
    where = f"{table_of[cell]}.{fig}: {describe(cells[cell])}"
    sets = [allowed(val, int(base or 1), low, high) for val, sup, base, low, high in states_v if not sup and val is not None]
    suppressed = any(sup for _, sup, *_ in states_v)
    if not sets:
        if suppressed:
            targets[v] = ("suppressed", 0, 1)
        return
    lo, hi = max(s[0] for s in sets), min(s[1] for s in sets)
    if lo > hi:
        result.findings.append(f"{where}: its published figures contradict each other")
        result.flags.append((*model.keys[v], "contradiction"))
        return
    if suppressed:
        result.findings.append(f"{where}: suppressed in one release or table, published in another")
        result.flags.append((*model.keys[v], "suppressed_and_published"))
    elif any(s != (lo, hi) for s in sets):
        result.findings.append(f"{where}: two of its figures narrow each other below what rounding allows")
        result.flags.append((*model.keys[v], "narrowed"))
    bounds[v] = (lo, hi)
    if lo < hi:  # a published zero is exact by the rules (1 and 2 would be suppressed): nothing to keep
        targets[v] = ("rounded", lo, hi)


class _Program:
    """One block's constraints, solved by HiGHS (relaxation first, integers when it is not whole)."""

    def __init__(self, vs: list[int], rels: list[tuple], ratios: list[tuple], bounds: np.ndarray, result: Attack):
        self.col = {v: j for j, v in enumerate(vs)}
        self.n, self.result = len(vs), result
        self.lo, self.hi = bounds[vs, 0].copy(), bounds[vs, 1].copy()
        eq, ub = ([], [], []), ([], [], [])
        n_eq, b_ub = 0, []
        for sense, t, ms in rels:
            if sense == "eq":
                target, r, sign = eq, n_eq, 1.0
                n_eq += 1
            else:  # total ≤ Σ members, or ≥ (written as −total + Σ members ≤ 0)
                target, r, sign = ub, len(b_ub), (1.0 if sense == "le" else -1.0)
                b_ub.append(0.0)
            for c, coef in [(t, 1.0)] + [(m, -1.0) for m in ms]:
                target[0].append(r)
                target[1].append(self.col[c])
                target[2].append(sign * coef)
        for vn, vd, v, k in ratios:
            tol = 1e-6 + 1e-10 * self.hi[self.col[vd]]
            for sign in (1.0, -1.0):
                r = len(b_ub)
                ub[0].extend([r, r])
                ub[1].extend([self.col[vd], self.col[vn]])
                ub[2].extend([sign * v, -sign * k])
                b_ub.append(tol)
        m_eq = n_eq
        self.a_eq = coo_matrix((eq[2], (eq[0], eq[1])), shape=(m_eq, self.n)).tocsr() if m_eq else None
        self.a_ub = coo_matrix((ub[2], (ub[0], ub[1])), shape=(len(b_ub), self.n)).tocsr() if b_ub else None
        self.b_ub = np.array(b_ub)

    def solve(self, c: np.ndarray, integral: bool = False, same: tuple[int, int] | None = None,
              toward: tuple[list[int], list[float], float] | None = None) -> np.ndarray | None:
        """An optimal point (None when infeasible). `toward` = (columns, targets, sign): instead of `c`,
        bring as many of the columns as far as their targets at once: minimise Σ max(x − t, 0) (sign
        1) or maximise Σ min(x, t) (sign −1), with one added variable per column."""
        self.result.programs += 1
        n, k = self.n, 0
        a_eq, a_ub, b_ub = self.a_eq, self.a_ub, self.b_ub
        lo, hi = self.lo, self.hi
        if same is not None:
            row = coo_matrix(([1.0, -1.0], ([0, 0], [self.col[same[0]], self.col[same[1]]])), shape=(1, n))
            a_eq = row.tocsr() if a_eq is None else vstack([a_eq, row]).tocsr()
        if toward is not None:
            cols, tgt, sign = toward
            k = len(cols)
            r = np.arange(k)
            # sign 1: x_j − z ≤ t, z ≥ 0, minimise Σ z; sign −1: y − x_j ≤ 0, y ≤ t, maximise Σ y
            extra = coo_matrix((np.r_[np.full(k, sign), np.full(k, -sign)], (np.r_[r, r], np.r_[cols, n + r])),
                               shape=(k, n + k))
            a_ub = extra.tocsr() if a_ub is None else vstack([_widen(a_ub, n + k), extra]).tocsr()
            b_ub = np.r_[self.b_ub if self.a_ub is not None else np.zeros(0), np.array(tgt) if sign > 0 else np.zeros(k)]
            if a_eq is not None:
                a_eq = _widen(a_eq, n + k)
            lo = np.r_[lo, np.zeros(k)]
            hi = np.r_[hi, np.full(k, CAP) if sign > 0 else np.array(tgt, dtype=float)]
            c = np.r_[np.zeros(n), np.full(k, sign)]
        b_eq = np.zeros(a_eq.shape[0]) if a_eq is not None else None
        if not integral:
            res = linprog(c, A_ub=a_ub, b_ub=b_ub if a_ub is not None else None, A_eq=a_eq, b_eq=b_eq,
                          bounds=np.column_stack([lo, hi]), method="highs")
            return res.x[:n] if res.status == 0 else None
        cons = []
        if a_eq is not None:
            cons.append(LinearConstraint(a_eq, b_eq, b_eq))
        if a_ub is not None:
            cons.append(LinearConstraint(a_ub, -np.inf, b_ub))
        res = milp(c, constraints=cons, integrality=np.r_[np.ones(n), np.zeros(k)], bounds=Bounds(lo, hi),
                   options={"time_limit": 60})
        return res.x[:n] if res.status == 0 and res.x is not None else None

    def point(self, c: np.ndarray | None = None, same: tuple[int, int] | None = None,
              toward: tuple | None = None) -> np.ndarray | None:
        """A whole-number optimal point (the relaxation's when it is whole, else the integer program's)."""
        c = np.zeros(self.n) if c is None else c
        x = self.solve(c, same=same, toward=toward)
        if x is None or np.all(np.abs(x - np.round(x)) < EPS):
            return x
        return self.solve(c, integral=True, same=same, toward=toward)


MAX_BLOCK_FINDINGS = 5


def _block(vs, rels, ratios, links, bounds, targets, model, cells, table_of, named, result: Attack,
           rounded: str = "full_interval") -> None:
    """Check one block. Every target must be reached by some whole-number point: rounds of programs
    that bring all pending unknowns toward their targets at once (most are reached in a few), then
    one program per unknown left. Under `not_pinned` a rounded count only needs two values among
    the points. After `MAX_BLOCK_FINDINGS` findings the block's other cells are not examined."""
    prog = _Program(vs, rels, ratios, bounds, result)
    x = prog.point()
    if x is None:
        cell, fig, _ = model.keys[vs[0]]
        result.findings.append(f"{table_of.get(cell, '?')}.{fig}: the figures around {describe(cells[cell])} contradict "
                               f"each other ({'; '.join(named[vs[0]]) or 'no relation'})")
        result.flags.append((*model.keys[vs[0]], "contradiction"))
        return
    points = [x]
    mine = [v for v in vs if v in targets]
    left: dict[str, set[int]] = {}
    for sense, sign in (("low", 1.0), ("high", -1.0)):
        want = {v: float(targets[v][1] if sense == "low" else targets[v][2]) for v in mine}
        pending = {v for v in mine if not _reached(x, prog.col[v], want[v], sign)}
        while pending:
            order = sorted(pending)
            x = prog.point(toward=([prog.col[v] for v in order], [want[v] for v in order], sign))
            if x is None:
                break
            points.append(x)
            hit = {v for v in pending if _reached(x, prog.col[v], want[v], sign)}
            if not hit:
                break
            pending -= hit
        left[sense] = pending
    found = 0
    for v in sorted(left["low"] | left["high"]):
        if found >= MAX_BLOCK_FINDINGS:
            cell, fig, _ = model.keys[v]
            result.findings.append(f"{table_of[cell]}.{fig}: further cells linked to {describe(cells[cell])} were not "
                                   f"examined (the block has {MAX_BLOCK_FINDINGS} findings already)")
            break
        j = prog.col[v]
        if targets[v][0] == "rounded" and rounded == "not_pinned":
            if max(p[j] for p in points) - min(p[j] for p in points) >= 1 - EPS:
                continue
            ends = []
            for sign in (1.0, -1.0):
                c = np.zeros(prog.n)
                c[j] = sign
                if (y := prog.point(c)) is not None:
                    points.append(y)
                    ends.append(y[j])
            if len(ends) == 2 and ends[1] - ends[0] < 1 - EPS:
                found += 1
                _report(v, "pinned", "rounded", model, cells, table_of, named, result)
            continue
        for sense, sign in (("low", 1.0), ("high", -1.0)):
            if v not in left[sense]:
                continue
            t = float(targets[v][1] if sense == "low" else targets[v][2])
            if any(_reached(p, j, t, sign) for p in points):
                continue
            c = np.zeros(prog.n)
            c[j] = sign
            y = prog.point(c)
            if y is not None and _reached(y, j, t, sign):
                points.append(y)
                continue
            found += 1
            _report(v, sense, targets[v][0], model, cells, table_of, named, result)
    for a, b in links:
        if prog.point(same=(a, b)) is None:
            cell, fig, _ = model.keys[b]
            result.findings.append(f"{table_of.get(cell, '?')}.{fig}: {describe(cells[cell])}: the holding shows its count "
                                   f"changed between releases, a count of new events "
                                   f"({'; '.join(named[b] or named[a]) or 'its own figures'})")
            result.flags.append((*model.keys[b], "changed"))


def _widen(a, columns: int) -> csr_matrix:
    """The same rows with more (empty) columns on the right."""
    a = a.tocsr()
    return csr_matrix((a.data, a.indices, a.indptr), shape=(a.shape[0], columns))


def _reached(x, j: int, target: float, sign: float) -> bool:
    return x is not None and (x[j] <= target + EPS if sign > 0 else x[j] >= target - EPS)


def _report(v, sense, kind, model, cells, table_of, named, result: Attack) -> None:
    cell, fig, _ = model.keys[v]
    where = f"{table_of[cell]}.{fig}: {describe(cells[cell])}"
    through = "; ".join(named[v]) or "no relation"
    flag = {"low": "not_zero", "high": "zero"}[sense] if kind == "suppressed" else \
        ("pinned" if sense == "pinned" else "narrowed")
    result.flags.append((*model.keys[v], flag))
    if kind == "suppressed":
        what = "suppressed, but the holding shows it is not zero" if sense == "low" else "suppressed, but the holding shows it is zero"
    elif sense == "pinned":
        what = "rounded, but the holding pins its count"
    else:
        what = "rounded, but the holding narrows it to fewer values than its rounding allows"
    result.findings.append(f"{where}: {what} (through {through})")
