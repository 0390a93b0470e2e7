"""The additive relations a table's own structure implies, whether or not a protocol declares them.

A recipient who knows that three months make a quarter, that the wards make the district and
that the sexes make persons can solve a suppressed cell from any of these relations, so
secondary suppression must cover every one of them, not only the margins a protocol names.
Each relation is an equation `total = Σ members` over row indices, derived here from:

- periods: a row whose period is exactly tiled by the rows of a finer period type with the same
  cell (months within quarters, quarters within years or pooled periods);
- geography: a district row and the rows of its wards (the reference geography's hierarchy, or
  every ward when the table holds one district), only when every ward of it is in the table;
- breakdowns: `persons` and the rows of one breakdown dimension (`sex:F`, `sex:M`; `age:...`);
- the same cell twice: rows with equal keys are one figure published twice.

A cell is identified by every column that is not a count or a figure derived from counts.
Relations that hold only as inequalities (people counted once in a quarter may fall in two of
its months; records of unknown sex count for persons only) are taken as equations too: the
attacker is given more than it has, so protection against it holds a fortiori.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import polars as pl

PERIOD_COLUMNS = ("period_type", "period_start", "period_end")
GEOGRAPHY_COLUMNS = ("geography_type", "geography_code", "geography_name")
BREAKDOWN_COLUMN = "breakdown"
ALL_PERSONS = "persons"
# geography type -> the type of the area it lies within
PARENT_TYPE = {"lsoa": "ward", "ward": "district"}

Equation = tuple[int, list[int]]


def key_columns(df: pl.DataFrame, counts: list[str], derived: list[str]) -> list[str]:
    """The columns that identify a cell: all but counts, their typed flags and derived figures."""
    skip = set(counts) | set(derived) | {f"{c}_suppressed" for c in counts} | {f"{c}_rounding_base" for c in counts}
    skip.add("derived_withheld")
    return [c for c in df.columns if c not in skip and not c.startswith("_")]


def _groups(df: pl.DataFrame, by: list[str]) -> list[list[int]]:
    """Row indices grouped by equal values of `by` (all rows in one group when `by` is empty)."""
    if not by:
        return [list(range(df.height))]
    out: dict[tuple, list[int]] = defaultdict(list)
    for i, k in enumerate(df.select(by).iter_rows()):
        out[k].append(i)
    return list(out.values())


def period_equations(df: pl.DataFrame, keys: list[str]) -> list[Equation]:
    """Each row whose period the rows of another, finer period type tile exactly (same cell)."""
    if not all(c in df.columns for c in PERIOD_COLUMNS):
        return []
    types, starts, ends = (df[c].to_list() for c in PERIOD_COLUMNS)
    out: list[Equation] = []
    for rows in _groups(df, [k for k in keys if k not in PERIOD_COLUMNS]):
        by_type: dict[str, list[tuple[date, date, int]]] = defaultdict(list)
        for i in rows:
            if starts[i] is not None and ends[i] is not None:
                by_type[types[i]].append((starts[i], ends[i], i))
        if len(by_type) < 2:
            continue
        for spans in by_type.values():
            spans.sort()
        for t, spans in by_type.items():
            for start, end, i in spans:
                for u, others in by_type.items():
                    if u == t:
                        continue
                    inside = [(s, e, j) for s, e, j in others if s >= start and e <= end]
                    if inside and _tiles(inside, start, end) and not (len(inside) == 1 and inside[0][2] < i):
                        out.append((i, [j for _, _, j in inside]))
    return out


def _tiles(spans: list[tuple[date, date, int]], start: date, end: date) -> bool:
    """The sorted spans cover start..end exactly, each beginning the day after the last ends."""
    if spans[0][0] != start or spans[-1][1] != end:
        return False
    return all(b[0] == a[1] + timedelta(days=1) for a, b in zip(spans, spans[1:]))


def geography_equations(df: pl.DataFrame, keys: list[str], parents: dict[str, str] | None) -> list[Equation]:
    """Each area's row and the rows of the areas within it (wards within their district).

    `parents`: area code -> the code of the area it lies within (the reference geography). Without
    it, every ward of a table holding a single district is taken to lie within it."""
    if not all(c in df.columns for c in ("geography_type", "geography_code")):
        return []
    gtypes, codes = df["geography_type"].to_list(), df["geography_code"].to_list()
    children: dict[str, set[str]] = defaultdict(set)
    if parents:
        for child, parent in parents.items():
            children[parent].add(child)
    out: list[Equation] = []
    for rows in _groups(df, [k for k in keys if k not in GEOGRAPHY_COLUMNS]):
        for child_type, parent_type in PARENT_TYPE.items():
            areas = {codes[i]: i for i in rows if gtypes[i] == parent_type}
            members = {codes[i]: i for i in rows if gtypes[i] == child_type}
            if not areas or not members:
                continue
            for code, i in areas.items():
                if parents:
                    within = children.get(code, set())
                    if not within or not within <= set(members):
                        continue  # a ward of it is not in the table: no equation over the table alone
                    out.append((i, [members[c] for c in sorted(within)]))
                elif len(areas) == 1:
                    out.append((i, [members[c] for c in sorted(members)]))
    return out


def breakdown_equations(df: pl.DataFrame, keys: list[str]) -> list[Equation]:
    """`persons` and the rows of each breakdown dimension (`<dimension>:<value>`) of the same cell."""
    if BREAKDOWN_COLUMN not in df.columns:
        return []
    labels = df[BREAKDOWN_COLUMN].to_list()
    out: list[Equation] = []
    for rows in _groups(df, [k for k in keys if k != BREAKDOWN_COLUMN]):
        totals = [i for i in rows if labels[i] == ALL_PERSONS]
        dims: dict[str, list[int]] = defaultdict(list)
        for i in rows:
            if labels[i] is not None and ":" in labels[i]:
                dims[labels[i].split(":", 1)[0]].append(i)
        out += [(t, members) for t in totals for members in dims.values()]
    return out


def duplicate_equations(df: pl.DataFrame, keys: list[str]) -> list[Equation]:
    """Rows with equal keys: the same figure twice (each later copy equals the first)."""
    return [(rows[0], [j]) for rows in _groups(df, keys) if len(rows) > 1 for j in rows[1:]]


def equations(df: pl.DataFrame, counts: list[str], derived: list[str],
              parents: dict[str, str] | None = None) -> list[Equation]:
    """Every additive relation of the table's structure, each once."""
    keys = key_columns(df, counts, derived)
    found = (period_equations(df, keys) + geography_equations(df, keys, parents)
             + breakdown_equations(df, keys) + duplicate_equations(df, keys))
    return unique(found)


def unique(eqs: list[Equation]) -> list[Equation]:
    """Equations in order, each once (members as a set; `a = b` and `b = a` are one)."""
    seen, out = set(), []
    for t, ms in eqs:
        key = (t, frozenset(ms))
        alt = (ms[0], frozenset([t])) if len(ms) == 1 else None
        if key in seen or (alt is not None and alt in seen):
            continue
        seen.add(key)
        out.append((t, sorted(ms)))
    return out
