"""The audit's checks of disclosure control on counts: no small cell shown, every count rounded,
no rate derived from a suppressed count, and no suppressed cell recoverable from the margins."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from orchestration.partnership.releases.audit import derived as derived_check
from orchestration.partnership.releases.protocols import Protocol


def base_ok(df: pl.DataFrame, column: str, dc: dict, base: int) -> pl.Expr:
    """Whether a row's rounding base (`column`) is allowed: the protocol's, or for a pooled row
    (period type a `pooled_periods` label) that of the published sum of n of its periods, n up to
    `periods` (docs/protocols.md): n (base − 1) + 1 for an odd base (n figures each within
    (base − 1) / 2 of their counts), n × base for an even one."""
    ok = pl.col(column) == base
    if "period_type" in df.columns:
        for spec in dc.get("pooled_periods") or []:
            sums = [n * (base - 1) + 1 if base % 2 else n * base for n in range(1, spec["periods"] + 1)]
            ok = ok | ((pl.col("period_type") == spec["label"]) & pl.col(column).is_in(sums))
    return ok


def check_counts(protocol: Protocol, out: dict, df: pl.DataFrame, problems: list[str]) -> None:
    t = out["table"]
    counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
    dc = protocol.disclosure
    low, high, base = dc["suppress_counts_from"], dc["suppress_counts_to"], dc["rounding_base"]
    for c in counts:
        if (small := df.filter(pl.col(c).is_between(low, high)).height):
            problems.append(f"{t}.{c}: {small} cells between {low} and {high}")
        if (unrounded := df.filter(pl.col(c).is_not_null() & (pl.col(c) % base != 0)).height):
            problems.append(f"{t}.{c}: {unrounded} values not rounded to {base}")
        if (shown := df.filter(pl.col(f"{c}_suppressed") & pl.col(c).is_not_null()).height):
            problems.append(f"{t}.{c}: {shown} cells flagged suppressed still show a value")
        if df.filter(~base_ok(df, f"{c}_rounding_base", dc, base)).height:
            problems.append(f"{t}.{c}: rounding base differs from the protocol's {base} "
                            f"(or that of the sum of n published periods, for a pooled count)")
    if derived and counts:
        any_sup = pl.any_horizontal([pl.col(f"{c}_suppressed") for c in counts])
        if (leaked := df.filter(any_sup & pl.any_horizontal([pl.col(d).is_not_null() for d in derived])).height):
            problems.append(f"{t}: {leaked} rows show rates derived from suppressed counts")
        if df.filter(any_sup != pl.col("derived_withheld")).height:
            problems.append(f"{t}: derived_withheld does not match the suppressed counts")
        problems += derived_check.problems(t, df)
    if protocol.margins:
        for c in counts:
            n = recoverable_cells(df, c, protocol.margins)
            if n:
                problems.append(f"{t}.{c}: {n} suppressed cells can be recovered from the margins "
                                f"({', '.join(m['name'] for m in protocol.margins)})")


def recoverable_cells(df: pl.DataFrame, count: str, margins: list[dict]) -> int:
    """Suppressed cells of `count` whose value follows from the published cells and the margins.

    Built independently of the builder: each margin group is an equation total − Σ members = 0;
    with the published cells moved to the right-hand side, a suppressed cell is determined exactly
    when every vector of the null space of the unknowns' matrix is zero at that cell."""
    rows = df.with_row_index("_i")
    suppressed = set(rows.filter(pl.col(f"{count}_suppressed"))["_i"].to_list())
    if not suppressed:
        return 0
    equations: list[dict[int, float]] = []
    for m in margins:
        member_ok = pl.col(m["column"]).is_in(m["members"]) if m.get("members") else pl.col(m["column"]).str.starts_with(m["members_prefix"])
        tot = rows.filter(pl.col(m["column"]) == m["total"]).group_by(m["by"]).agg(pl.col("_i").alias("t"))
        mem = rows.filter(member_ok & (pl.col(m["column"]) != m["total"])).group_by(m["by"]).agg(pl.col("_i").alias("m"))
        for r in tot.join(mem, on=m["by"], how="inner", nulls_equal=True).iter_rows(named=True):
            for t in r["t"]:
                eq: dict[int, float] = defaultdict(float)
                eq[t] += 1.0
                for i in r["m"]:
                    eq[i] -= 1.0
                equations.append({i: v for i, v in eq.items() if i in suppressed})
    equations = [e for e in equations if e]
    if not equations:
        return 0
    # connected groups of unknowns, each solved on its own
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for e in equations:
        cells = list(e)
        for c in cells[1:]:
            parent[find(c)] = find(cells[0])
    groups: dict[int, list[dict[int, float]]] = defaultdict(list)
    for e in equations:
        groups[find(next(iter(e)))].append(e)
    found = 0
    # many small decompositions: BLAS threads would only wait on each other
    with threadpool_limits(limits=1, user_api="blas"):
        for eqs in groups.values():
            cells = sorted({c for e in eqs for c in e})
            idx = {c: j for j, c in enumerate(cells)}
            a = np.zeros((len(eqs), len(cells)))
            for r, e in enumerate(eqs):
                for c, v in e.items():
                    a[r, idx[c]] = v
            _, sv, vt = np.linalg.svd(a, full_matrices=False)
            rank = int((sv > 1e-9).sum())
            # the right singular vectors are orthonormal: a cell's squared component in the null space is 1 minus
            # its squared component in the row space (the first `rank` of them)
            in_null = 1.0 - (vt[:rank] ** 2).sum(axis=0)
            found += int((in_null < 1e-12).sum())
    return found
