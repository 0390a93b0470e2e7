"""The attacker's programs: one block of unknowns, what whole-number points it allows.

Each block (unknowns linked by relations, rates or a change between releases) is one set of
linear constraints solved by HiGHS: the relaxation in one model kept for the block's programs
(`relaxation`; `linprog` for a program it does not hold) and, when the relaxation's optimum is not
whole, a whole point near it (`nearby`) or else scipy's `milp`, so what is proven holds over the
whole counts. Used by `attack`; does not use the release builder's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix, csr_matrix, vstack

from orchestration.partnership.releases.audit import nearby
from orchestration.partnership.releases.audit.propagate import tighten as _tighten
from orchestration.partnership.releases.audit.relations import describe
from orchestration.partnership.releases.audit.relaxation import Relaxation, RelaxationUnsolved

CAP = 1e7  # no count reaches it: an upper bound that only keeps the programs bounded
# an integer program's limit in HiGHS's branch-and-bound nodes: work, not seconds, so that a verdict
# never depends on the machine's load; stopped there without a whole point, the program counts as
# having none (a finding: more is hidden, never less), and `Attack.limited` says how often
MILP_NODES = 5000
EPS = 1e-6


@dataclass
class Attack:
    findings: list[str] = field(default_factory=list)
    # what was found, for tests and tools: (cell, figure, count behind it or None, kind)
    flags: list[tuple[str, str, float | None, str]] = field(default_factory=list)
    unknowns: int = 0
    blocks: int = 0
    programs: int = 0
    nearby: int = 0  # whole points found near a relaxation's, without an integer program
    limited: int = 0  # integer programs stopped by `MILP_NODES` with no whole point (counted as none)
    known: int = 0  # blocks found clean before (`verdicts`), not attacked again
    clean: set[str] = field(default_factory=set)  # fingerprints of the blocks found clean
    seconds: float = 0.0


class _Program:
    """One block's constraints, solved by HiGHS (relaxation first, integers when it is not whole)."""

    def __init__(self, vs: list[int], rels: list[tuple], ratios: list[tuple], bounds: np.ndarray, result: Attack,
                 aims: list[int] = (), links: list[tuple[int, int]] = ()):
        self.col = {v: j for j, v in enumerate(vs)}
        # the unknowns `toward` may bring to targets, the pairs `same` may make equal (`relaxation`)
        self.aims, self.links = [self.col[v] for v in aims], [(self.col[a], self.col[b]) for a, b in links]
        self.relaxation: Relaxation | None = None
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
        # every unknown is a whole count, so bounds implied by the rows and rounded inward hold every
        # whole-number point: they prove most cells' limits without a program, and tighten the rest
        tight = _tighten(self.a_eq, self.a_ub, self.b_ub, self.lo, self.hi)
        if tight is not None:  # else the programs report the contradiction
            self.lo, self.hi = tight

    def solve(self, c: np.ndarray, integral: bool = False, same: tuple[int, int] | None = None,
              toward: tuple[list[int], list[float], float] | None = None, gap: float = 1e-4,
              at: tuple[int, float, float] | None = None) -> np.ndarray | None:
        """An optimal point (None when infeasible). `toward` = (columns, targets, sign): instead of `c`,
        bring as many of the columns as far as their targets at once: minimise Σ max(x − t, 0) (sign
        1) or maximise Σ min(x, t) (sign −1), with one added variable per column."""
        self.result.programs += 1
        n, k = self.n, 0
        a_ub, b_ub = self.a_ub, self.b_ub
        a_eq, lo, hi = self._rows(same, at)
        if lo is None:
            return None
        if not integral and not np.any(c):  # the block's one model, built at its first program
            self.relaxation = self.relaxation or Relaxation(self.a_eq, self.a_ub, self.b_ub, self.lo, self.hi,
                                                            self.aims, self.links, CAP)
            if self.relaxation.covers(toward, same):
                return self.relaxation.solve(at, toward, same)
        rows = a_eq, lo, hi  # the block's own, before `toward`'s columns are added
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
            if res.status not in (0, 2):  # 0 optimal, 2 infeasible: anything else proves nothing either way
                raise RelaxationUnsolved(res.message)
            return res.x[:n] if res.status == 0 else None
        cons = []
        if a_eq is not None:
            cons.append(LinearConstraint(a_eq, b_eq, b_eq))
        if a_ub is not None:
            cons.append(LinearConstraint(a_ub, -np.inf, b_ub))
        res = milp(c, constraints=cons, integrality=np.r_[np.ones(n), np.zeros(k)], bounds=Bounds(lo, hi),
                   options={"node_limit": MILP_NODES, "mip_rel_gap": gap})
        if res.status == 0 and res.x is not None:
            return res.x[:n]
        # stopped by the node limit with a whole point in hand: a witness all the same once it keeps every
        # row and bound; without one nothing is proven, and the program counts as having none (protective)
        if res.x is not None:
            y = np.round(res.x[:n])
            if nearby.holds(y, rows[0], self.a_ub, self.b_ub, rows[1], rows[2]):
                return y
        self.result.limited += res.status != 2  # 2: proven infeasible
        return None

    def _rows(self, same: tuple[int, int] | None, at: tuple[int, float, float] | None):
        """The equations with `same` (two columns equal) added, and the bounds with `at` (column,
        target, sign: the column held at or below (1) / above (−1) the target) applied; bounds None
        when `at` leaves the column no value."""
        a_eq, lo, hi = self.a_eq, self.lo, self.hi
        if at is not None:
            j, t, sign = at
            lo, hi = lo.copy(), hi.copy()
            if sign > 0:
                hi[j] = min(hi[j], t)
            else:
                lo[j] = max(lo[j], t)
            if lo[j] > hi[j]:
                return a_eq, None, None
        if same is not None:
            row = coo_matrix(([1.0, -1.0], ([0, 0], [self.col[same[0]], self.col[same[1]]])), shape=(1, self.n))
            a_eq = row.tocsr() if a_eq is None else vstack([a_eq, row]).tocsr()
        return a_eq, lo, hi

    def _whole(self, x: np.ndarray, c: np.ndarray, same=None, toward=None, gap: float = 1e-4, at=None) -> np.ndarray | None:
        """A whole-number point of the program whose relaxation's optimum is `x`: `x` itself when it is
        whole, else one found near it (`nearby`), else the integer program's (optimal within `gap`)."""
        if _whole(x):
            return x
        a_eq, lo, hi = self._rows(same, at)
        y = nearby.whole_near(x, a_eq, self.a_ub, self.b_ub, lo, hi)
        if y is not None:
            self.result.nearby += 1
            return y
        return self.solve(c, integral=True, same=same, toward=toward, gap=gap, at=at)

    def point(self, c: np.ndarray | None = None, same: tuple[int, int] | None = None,
              toward: tuple | None = None, gap: float = 1e-4) -> np.ndarray | None:
        """A whole-number point, optimal or near it: the relaxation's optimum when it is whole, else a
        whole point near it, else the integer program's, optimal within `gap` (a witness needs to be
        whole, not optimal)."""
        c = np.zeros(self.n) if c is None else c
        x = self.solve(c, same=same, toward=toward)
        return None if x is None else self._whole(x, c, same, toward, gap)

    def reach(self, j: int, t: float, sign: float, toward: tuple | None = None) -> tuple[np.ndarray | None, float | None]:
        """A whole-number point with column j at or below `t` (sign 1) or at or above it (sign −1),
        None when there is none; and, when the column's bounds already rule `t` out, that bound (else
        None). The relaxation holds every whole-number point, so when it has no point with the column
        held at `t`, no whole point reaches it (no integer program); when it has one that is not
        whole, any whole point with the column held at `t` is a witness: one near it, else the
        integer program's. Either looks for one that also brings the `toward` columns (as for
        `solve`) near their targets, so that one program settles other cells too."""
        if not _reached(self.lo if sign > 0 else self.hi, j, t, sign):
            return None, float(self.lo[j] if sign > 0 else self.hi[j])  # its bounds already rule `t` out
        c, at = np.zeros(self.n), (j, t, sign)
        x = self.solve(c, at=at, toward=toward)
        if x is None or _whole(x):
            return x, None
        lo, hi = self._rows(None, at)[1:]
        if _tighten(self.a_eq, self.a_ub, self.b_ub, lo, hi) is None:
            return None, None  # held at `t`, the rows' bounds leave no whole number: none reaches it
        return self._whole(x, c, toward=toward, gap=TOWARD_GAP, at=at), None


MAX_BLOCK_FINDINGS = 5
TOWARD_GAP = 0.5  # the rounds' points are witnesses: a whole point near the optimum serves as well


def block(vs, rels, ratios, links, bounds, targets, model, cells, table_of, named, result: Attack,
          rounded: str = "full_interval", most: int | None = None, seeds: list | None = None) -> list[np.ndarray]:
    """Check one block. Every target must be reached by some whole-number point: rounds of programs
    that bring all pending unknowns toward their targets at once (most are reached in a few), then
    one program per unknown left. Under `not_pinned` a rounded count only needs two values among
    the points. After `most` findings (`MAX_BLOCK_FINDINGS` by default) the block's other cells are
    not examined. `seeds`: whole points found before (`nearby.Witnesses`); those that keep every row
    and bound of this block are witnesses as found (a limit is still ruled out only by a proof).
    Returns the whole points found, seeds kept included."""
    most = MAX_BLOCK_FINDINGS if most is None else most
    mine = [v for v in vs if v in targets]
    prog = _Program(vs, rels, ratios, bounds, result, mine, [(a, b) for a, b in links])
    points = _Points(prog.n)
    for p in seeds or []:
        if nearby.holds(p, prog.a_eq, prog.a_ub, prog.b_ub, prog.lo, prog.hi):
            points.append(p)
    # the first round's program is feasible exactly when the block is (its added columns are free);
    # a seed that holds already shows it is
    limited = result.limited
    x = points[0] if points else prog.point(toward=([prog.col[v] for v in mine], [float(targets[v][1]) for v in mine],
                                                    1.0), gap=TOWARD_GAP) if mine else prog.point()
    if x is None:
        cell, fig, _ = model.keys[vs[0]]
        if result.limited > limited:  # not proven: the block is reported unsettled, never passed
            result.findings.append(f"{table_of.get(cell, '?')}.{fig}: no whole-number point of the figures around "
                                   f"{describe(cells[cell])} was found within the attacker's limit of {MILP_NODES} "
                                   f"branch-and-bound nodes, so nothing in them is shown safe")
            result.flags.append((*model.keys[vs[0]], "unsettled"))
            return []
        result.findings.append(f"{table_of.get(cell, '?')}.{fig}: the figures around {describe(cells[cell])} contradict "
                               f"each other ({'; '.join(named[vs[0]]) or 'no relation'})")
        result.flags.append((*model.keys[vs[0]], "contradiction"))
        return []
    if not points:
        points.append(x)
    left: dict[str, set[int]] = {}
    cols = np.array([prog.col[v] for v in mine], dtype=np.int64)
    for sense, sign in (("low", 1.0), ("high", -1.0)):
        want = {v: float(targets[v][1] if sense == "low" else targets[v][2]) for v in mine}
        pending = set(np.array(mine)[~points.reached(cols, np.array([want[v] for v in mine]), sign)].tolist()) \
            if mine else set()
        while pending:
            order = sorted(pending)
            x = prog.point(toward=([prog.col[v] for v in order], [want[v] for v in order], sign), gap=TOWARD_GAP)
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
        if found >= most:
            cell, fig, _ = model.keys[v]
            result.findings.append(f"{table_of[cell]}.{fig}: further cells linked to {describe(cells[cell])} were not "
                                   f"examined (the block has {most} findings already)")
            break
        j = prog.col[v]
        if targets[v][0] == "rounded" and rounded == "not_pinned":
            if points.high[j] - points.low[j] >= 1 - EPS:
                continue
            # pinned when no whole point moves it off the value every point so far gives it, either way
            at = round(float(points[0][j]))
            other = None
            for t, sign in ((at - 1.0, 1.0), (at + 1.0, -1.0)):
                if (other := prog.reach(j, t, sign)[0]) is not None:
                    points.append(other)
                    break
            if other is None:
                found += 1
                _report(v, "pinned", "rounded", model, cells, table_of, named, result)
            continue
        for sense, sign in (("low", 1.0), ("high", -1.0)):
            if v not in left[sense]:
                continue
            t = float(targets[v][1] if sense == "low" else targets[v][2])
            if points.reached(j, t, sign):
                continue
            y, least = prog.reach(j, t, sign, _toward(prog, left[sense], targets, sense, sign, points))
            if y is not None:
                points.append(y)
                continue
            if sense == "low" and _above_small(targets[v], prog, j, points, least):
                continue  # hidden, proven above the suppression range: no small count in it
            found += 1
            _report(v, sense, targets[v][0], model, cells, table_of, named, result)
            if targets[v][0] == "rounded":
                break  # one finding per rounded count: narrowed is narrowed
    for a, b in links:
        if prog.point(same=(a, b)) is None:
            cell, fig, _ = model.keys[b]
            result.findings.append(f"{table_of.get(cell, '?')}.{fig}: {describe(cells[cell])}: the holding shows its count "
                                   f"changed between releases, a count of new events "
                                   f"({'; '.join(named[b] or named[a]) or 'its own figures'})")
            result.flags.append((*model.keys[b], "changed"))
    return list(points)


class _Points(list):
    """The whole points found in a block, with each column's least and greatest value over them, so
    that whether any point brings a column to a target is one comparison, however many points there are."""

    def __init__(self, n: int):
        super().__init__()
        self.low, self.high = np.full(n, np.inf), np.full(n, -np.inf)

    def append(self, x: np.ndarray) -> None:
        super().append(x)
        np.minimum(self.low, x, out=self.low)
        np.maximum(self.high, x, out=self.high)

    def reached(self, j, target, sign: float):
        """Whether some point brings column(s) `j` to `target`: at or below it (sign 1), at or above (−1)."""
        return self.low[j] <= target + EPS if sign > 0 else self.high[j] >= target - EPS


def _widen(a, columns: int) -> csr_matrix:
    """The same rows with more (empty) columns on the right."""
    a = a.tocsr()
    return csr_matrix((a.data, a.indices, a.indptr), shape=(a.shape[0], columns))


def _above_small(target: tuple, prog: _Program, j: int, points: _Points, least: float | None) -> bool:
    """A suppressed count whose least whole-number value is above the top of its suppression range:
    the least its bounds allow (`least`, when known) is, or no whole point holds it at or below the top."""
    top = target[3] if target[0] == "suppressed" and len(target) > 3 else None
    if top is None:
        return False
    if least is not None and least > top + EPS:
        return True
    limited = prog.result.limited
    y, _ = prog.reach(j, float(top), 1.0)
    if y is not None:
        points.append(y)
    return y is None and prog.result.limited == limited  # a program stopped by its limit proves nothing


def _toward(prog: _Program, cells: set[int], targets: dict, sense: str, sign: float, points: _Points) -> tuple | None:
    """The `toward` of the cells not yet brought to their `sense` target by any point."""
    i = 1 if sense == "low" else 2
    order = sorted(cells)
    cols = np.array([prog.col[v] for v in order], dtype=np.int64)
    want = np.array([float(targets[v][i]) for v in order])
    open_ = ~points.reached(cols, want, sign)
    return (cols[open_].tolist(), want[open_].tolist(), sign) if open_.any() else None


def _whole(x: np.ndarray) -> bool:
    return bool(np.all(np.abs(x - np.round(x)) < EPS))


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
