"""One block's relaxation, kept in HiGHS from one program to the next.

The attacker asks many programs of one block: the same rows each time, with another objective,
one count held at a target, or two counts made equal. Built and presolved afresh for each (as
`scipy.optimize.linprog` does), a program over a large block costs seconds; kept in one HiGHS
model, each program only changes costs and bounds and starts from the last optimal basis, so it
takes a few simplex iterations. Every variant is in the model from the start, switched off by
free bounds: per target count, x − z ≤ t (z ≥ 0, minimise Σ z: bring counts down to targets) and
y − x ≤ 0 (0 ≤ y ≤ t, maximise Σ y: bring them up), and per change between releases the row
x_a − x_b, free unless the two are asked to be equal. The rows and bounds of the block's own
unknowns are never changed, so the programs are those `linprog` was given, solved from another
start; a program HiGHS does not finish from that start is solved again from nothing (presolve
included), and only an optimum or a proven infeasibility is taken as an answer.
"""

from __future__ import annotations

import highspy
import numpy as np
from scipy.sparse import coo_matrix, csc_matrix, vstack

INF = highspy.kHighsInf
_OPTIMAL, _INFEASIBLE = highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible


class RelaxationUnsolved(RuntimeError):
    """A relaxation neither solved nor proven infeasible: the attacker cannot decide, so it stops."""

    def __init__(self, status: object):
        super().__init__(f"HiGHS ended one of the attacker's relaxations undecided ({status}): "
                         "nothing in the block can be shown safe, so the release is not built")


class Relaxation:
    """The relaxation of a block's rows (`a_eq` x = 0, `a_ub` x ≤ `b_ub`, `lo` ≤ x ≤ `hi`) with the
    `toward` rows of the columns `aims` and the `same` rows of the column pairs `links`."""

    def __init__(self, a_eq, a_ub, b_ub: np.ndarray, lo: np.ndarray, hi: np.ndarray, aims: list[int],
                 links: list[tuple[int, int]], cap: float):
        n, k, m = len(lo), len(aims), len(links)
        self.n, self.lo, self.hi = n, lo, hi
        self.aim = {j: i for i, j in enumerate(aims)}
        self.link = {pair: i for i, pair in enumerate(links)}
        width = n + 2 * k
        blocks, row_lo, row_hi = [], [], []
        for a, low, high in ((a_eq, 0.0, 0.0), (a_ub, -INF, b_ub)):
            if a is not None:
                c = coo_matrix(a, shape=(a.shape[0], n))
                blocks.append(coo_matrix((c.data, (c.row, c.col)), shape=(a.shape[0], width)))  # room for z and y
                row_lo.append(np.full(a.shape[0], low))
                row_hi.append(np.broadcast_to(high, (a.shape[0],)).astype(float))
        self.first_aim = sum(b.shape[0] for b in blocks)  # the z rows, then the y rows, then the links
        i, j = np.arange(k), np.asarray(aims, dtype=np.int64)
        ends = np.array(links, dtype=np.int64).reshape(-1, 2)
        extra = coo_matrix((np.r_[np.ones(k), -np.ones(k), np.ones(k), -np.ones(k), np.ones(m), -np.ones(m)],
                            (np.r_[i, i, k + i, k + i, 2 * k + np.arange(m), 2 * k + np.arange(m)],
                             np.r_[j, n + i, n + k + i, j, ends[:, 0], ends[:, 1]])), shape=(2 * k + m, width))
        a = csc_matrix(vstack([*blocks, extra]))
        self.rows = a.shape[0]
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = width, self.rows
        lp.col_cost_ = np.zeros(width)
        self.col_lo, self.col_hi = np.r_[lo, np.zeros(2 * k)], np.r_[hi, np.full(2 * k, cap)]
        lp.col_lower_, lp.col_upper_ = self.col_lo, self.col_hi
        lp.row_lower_ = np.concatenate([*row_lo, np.full(2 * k + m, -INF)])
        lp.row_upper_ = np.concatenate([*row_hi, np.full(2 * k + m, INF)])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr
        lp.a_matrix_.index_ = a.indices
        lp.a_matrix_.value_ = a.data
        self.k = k
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.passModel(lp)

    def covers(self, toward: tuple | None, same: tuple[int, int] | None) -> bool:
        """Whether the model holds the rows these programs need."""
        return (toward is None or all(j in self.aim for j in toward[0])) and (same is None or same in self.link)

    def solve(self, at: tuple[int, float, float] | None = None, toward: tuple | None = None,
              same: tuple[int, int] | None = None) -> np.ndarray | None:
        """An optimal point of the block's unknowns (None when the program has none): no objective, or
        `toward`'s; `at` (column, target, sign) holds one column at or below (1) / above (−1) the
        target; `same` (a pair of `links`) makes two columns equal. The model is as before afterwards."""
        h, n, k = self.highs, self.n, self.k
        cols, col_lo, col_hi, cost, rows, row_lo, row_hi = [], [], [], [], [], [], []
        if at is not None:
            j, t, sign = at
            cols.append(j)
            col_lo.append(self.lo[j] if sign > 0 else max(self.lo[j], t))
            col_hi.append(min(self.hi[j], t) if sign > 0 else self.hi[j])
            if col_lo[0] > col_hi[0]:
                return None  # the bounds alone leave the column no value
        if toward is not None:
            aims, targets, sign = toward
            i = np.array([self.aim[j] for j in aims], dtype=np.int64)
            if sign > 0:  # x − z ≤ t, minimise Σ z
                cost.append((n + i, np.ones(len(i))))
                rows.append(self.first_aim + i)
                row_lo.append(np.full(len(i), -INF))
                row_hi.append(np.asarray(targets, dtype=float))
            else:  # y − x ≤ 0, y ≤ t, maximise Σ y
                cost.append((n + k + i, -np.ones(len(i))))
                rows.append(self.first_aim + k + i)
                row_lo.append(np.full(len(i), -INF))
                row_hi.append(np.zeros(len(i)))
                cols.extend((n + k + i).tolist())
                col_lo.extend([0.0] * len(i))
                col_hi.extend(np.asarray(targets, dtype=float).tolist())
        if same is not None:
            rows.append(np.array([self.first_aim + 2 * k + self.link[same]]))
            row_lo.append(np.zeros(1))
            row_hi.append(np.zeros(1))
        undo = self._change(cols, col_lo, col_hi, cost, rows, row_lo, row_hi)
        try:
            h.run()
            status = h.getModelStatus()
            if status not in (_OPTIMAL, _INFEASIBLE):  # not finished from the last basis: from nothing
                h.clearSolver()
                h.run()
                status = h.getModelStatus()
            if status not in (_OPTIMAL, _INFEASIBLE):  # None would read as a proof that no point exists
                raise RelaxationUnsolved(status)
            return np.array(h.getSolution().col_value[:n]) if status == _OPTIMAL else None
        finally:
            undo()

    def _change(self, cols, col_lo, col_hi, cost, rows, row_lo, row_hi):
        """Apply the program's bounds and costs; returns what puts the model back."""
        h = self.highs
        c_idx = np.array(cols, dtype=np.int32)
        if len(c_idx):
            old_lo, old_hi = self.col_lo[c_idx], self.col_hi[c_idx]  # the model's own, restored after each program
            h.changeColsBounds(len(c_idx), c_idx, np.array(col_lo, dtype=float), np.array(col_hi, dtype=float))
        for idx, values in cost:
            h.changeColsCost(len(idx), idx.astype(np.int32), values)
        r_idx = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, dtype=np.int32)
        if len(r_idx):
            h.changeRowsBounds(len(r_idx), r_idx, np.concatenate(row_lo), np.concatenate(row_hi))

        def undo() -> None:
            if len(c_idx):
                h.changeColsBounds(len(c_idx), c_idx, old_lo, old_hi)
            for idx, values in cost:
                h.changeColsCost(len(idx), idx.astype(np.int32), np.zeros(len(idx)))
            if len(r_idx):
                h.changeRowsBounds(len(r_idx), r_idx, np.full(len(r_idx), -INF), np.full(len(r_idx), INF))
        return undo
