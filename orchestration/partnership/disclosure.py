"""Statistical disclosure control for aggregate outputs, as typed columns.

A count is published as three columns: the value (null when suppressed), whether it was
suppressed, and the rounding base applied. Never a magic string in a numeric column.

Primary suppression hides counts in [low, high]. Secondary suppression then hides further
cells so that no suppressed cell can be worked out from the margins the protocol declares
(e.g. wards adding up to the district, sexes adding up to persons): each margin is a set of
linear equations `total = sum(members)`, and cells are added to the suppressed set until no
suppressed cell is determined by the published ones — neither by an equation with a single
unknown nor by combining equations (checked with the rank of the equations' unknown part).
"""

from __future__ import annotations

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


def _components(equations: list[tuple[int, list[int]]]) -> list[list[int]]:
    """Indices of equations that share cells, grouped (each group is solved on its own)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for t, ms in equations:
        for m in ms:
            parent[find(m)] = find(t)
    groups: dict[int, list[int]] = defaultdict(list)
    for e, (t, _) in enumerate(equations):
        groups[find(t)].append(e)
    return list(groups.values())


def _determined(equations: list[tuple[int, list[int]]], suppressed: set[int]) -> list[int]:
    """Suppressed cells whose value follows from the equations and the published cells."""
    unknown = sorted({c for t, ms in equations for c in (t, *ms) if c in suppressed})
    if not unknown:
        return []
    col = {c: j for j, c in enumerate(unknown)}
    a = np.zeros((len(equations), len(unknown)))
    for r, (t, ms) in enumerate(equations):
        if t in col:
            a[r, col[t]] += 1.0
        for m in ms:
            if m in col:
                a[r, col[m]] -= 1.0
    rank = np.linalg.matrix_rank(a) if a.size else 0
    out = []
    for c, j in col.items():
        e = np.zeros((1, len(unknown)))
        e[0, j] = 1.0
        if np.linalg.matrix_rank(np.vstack([a, e])) == rank:
            out.append(c)
    return out


def secondary(values: list[int | None], suppressed: list[bool], equations: list[tuple[int, list[int]]]) -> list[bool]:
    """Suppress more cells until no suppressed cell can be recovered from the equations.

    `values` are the true counts (used only to choose the smallest cells to sacrifice);
    nulls are treated as published (known) cells, as an attacker would."""
    out = list(suppressed)
    for comp in _components(equations):
        eqs = [equations[e] for e in comp]
        while True:
            hidden = {i for t, ms in eqs for i in (t, *ms) if out[i]}
            if not hidden:
                break
            # 1. an equation with exactly one hidden cell gives it away: hide its smallest published member,
            #    or its total when every member is hidden or empty
            # 2. otherwise, any hidden cell still determined by combining equations: same remedy on one of its equations
            target = None
            for t, ms in eqs:
                cells = (t, *ms)
                if sum(out[i] for i in cells) == 1:
                    target = (t, ms)
                    break
            if target is None:
                det = _determined(eqs, hidden)
                if not det:
                    break
                c = det[0]
                mine = [(t, ms) for t, ms in eqs if c == t or c in ms]
                target = next((e for e in mine if any(not out[i] and values[i] is not None for i in (e[0], *e[1]))),
                              mine[0])
            t, ms = target
            published = [i for i in ms if not out[i] and values[i] is not None]
            if published:
                pick = min(published, key=lambda i: (values[i], i))
            elif not out[t] and values[t] is not None:
                pick = t
            else:  # only empty cells remain: the equation cannot be closed by suppression; hide what is left
                rest = [i for i in (t, *ms) if not out[i]]
                if not rest:
                    break
                pick = rest[0]
            out[pick] = True
    return out


def apply(df: pl.DataFrame, counts: list[str], derived: list[str], low: int, high: int, base: int,
          margins: list[dict] | None = None) -> pl.DataFrame:
    """Suppress counts in [low, high], then secondary suppression over `margins`, round the rest
    to `base`, and withhold derived values (rates, intervals) of any row with a suppressed count."""
    equations = margin_equations(df, margins or [])
    flags = {}
    for c in counts:
        values = df[c].to_list()
        primary = [v is not None and low <= v <= high for v in values]
        flags[c] = secondary(values, primary, equations) if equations else primary
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


def column_order(columns: list[str], counts: list[str], derived: list[str]) -> list[str]:
    out = []
    for c in columns:
        out.append(c)
        if c in counts:
            out += [f"{c}_suppressed", f"{c}_rounding_base"]
    if derived:
        out.append("derived_withheld")
    return out
