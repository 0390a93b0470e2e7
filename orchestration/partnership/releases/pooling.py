"""Pooled periods for small areas: counts added up over consecutive periods before protection.

A ward's quarter holds a handful of events, so most ward cells of a quarter are suppressed. Public
health profiles publish small areas over pooled periods instead (e.g. a rolling 12 months). A
protocol asks for them under `disclosure_control.pooled_periods`; each entry adds, for the
geography types it names, one row per cell: the counts of the `periods` latest consecutive
periods of `period_type` (the latest the indicator reports), added up, labelled `label` as its
period type, spanning the first period's start to the last one's end. A person counted in two
of the periods counts twice, as in pooled profiles. Pooled rows are cells like any other: the
same suppression, rounding and secondary suppression (they are the total of the periods they
pool: structure.period_equations), and their rates are computed from their protected counts.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from orchestration.partnership.releases.structure import BREAKDOWN_COLUMN, GEOGRAPHY_COLUMNS, PERIOD_COLUMNS, key_columns

POOL_OF = "_pool_of"  # the period type a pooled row adds up (dropped before the release is written)


def add_pooled(df: pl.DataFrame, specs: list[dict] | None, counts: list[str], derived: list[str]) -> pl.DataFrame:
    """`df` with the pooled rows of `specs` appended (derived figures empty: computed after
    protection); rows the table had keep their order. Every row carries `_pool_of` (null when not
    pooled)."""
    df = df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(POOL_OF))
    if not specs or df.height == 0 or not all(c in df.columns for c in PERIOD_COLUMNS):
        return df
    keys = [k for k in key_columns(df, counts, derived) if k not in PERIOD_COLUMNS and k != POOL_OF]
    # the latest period is the series' latest (an indicator's, whatever the area or breakdown)
    series = [k for k in keys if k not in GEOGRAPHY_COLUMNS and k != BREAKDOWN_COLUMN]
    pooled = [_pool(df, spec, keys, series, counts, derived) for spec in specs]
    pooled = [p for p in pooled if p.height]
    return pl.concat([df, *pooled], how="vertical_relaxed") if pooled else df


def _pool(df: pl.DataFrame, spec: dict, keys: list[str], series: list[str], counts: list[str],
          derived: list[str]) -> pl.DataFrame:
    base = df.filter((pl.col("period_type") == spec["period_type"])
                     & pl.col("geography_type").is_in(spec["geography_types"]) if "geography_type" in df.columns
                     else pl.col("period_type") == spec["period_type"])
    if base.height == 0:
        return base.head(0)
    n = spec["periods"]
    parts = []
    for group in base.partition_by(series, maintain_order=True) if series else [base]:
        periods = sorted(set(zip(group["period_start"].to_list(), group["period_end"].to_list())))[-n:]
        starts, ends = [s for s, _ in periods], [e for _, e in periods]
        if len(periods) < n or any(s != e + timedelta(days=1) for s, e in zip(starts[1:], ends[:-1])):
            continue  # fewer than `periods` consecutive periods: nothing to pool
        window = group.filter(pl.col("period_start").is_in(starts))
        agg = window.group_by(keys, maintain_order=True).agg(
            [pl.len().alias("_n")]
            + [pl.when(pl.col(c).null_count() == 0).then(pl.col(c).sum()).alias(c) for c in counts])
        agg = agg.filter(pl.col("_n") == n).drop("_n")  # a cell missing one of the periods is not pooled
        parts.append(agg.with_columns(pl.lit(spec["label"]).alias("period_type"),
                                      pl.lit(starts[0]).alias("period_start"),
                                      pl.lit(ends[-1]).alias("period_end"),
                                      pl.lit(spec["period_type"]).alias(POOL_OF)))
    if not parts:
        return base.head(0)
    out = pl.concat(parts, how="vertical_relaxed")
    for d in derived:
        out = out.with_columns(pl.lit(None, dtype=df.schema[d]).alias(d))
    return out.select([pl.col(c).cast(df.schema[c]) for c in df.columns])


def sum_base(k: int, base: int) -> int:
    """The rounding base of a sum of `k` figures rounded (half up) to `base`, not 0: with an odd base
    each figure stands for the whole counts within (base − 1) / 2 of it, so the sum stands for those
    within k (base − 1) / 2, exactly what a base of k (base − 1) + 1 says (17 for four figures of base
    5: within 8). Nothing the sum's base allows is then ruled out by the figures it adds up, nor the
    other way round. An even base rounds unevenly (a 10 stands for 5–14), which no single base can say
    of a sum: k × base, which allows a little more than the figures do (the attacker may rule that out)."""
    k = max(1, k)
    return k * (base - 1) + 1 if base % 2 else k * base


def from_published(df: pl.DataFrame, equations: list[tuple[int, list[int]]], counts: list[str],
                   base: int) -> pl.DataFrame:
    """`df` after suppression and rounding, with each pooled count whose pooled periods are all
    published replaced by the sum of their published values, its rounding base `sum_base(n, base)` for
    the `n` periods not published 0: what the sum stands for, exactly. Rounded on its own, a pooled
    count would narrow the periods it adds up: four quarters published 25 each (23–27 each, so
    92–108 together) and a pool published 90 (88–92) leave 23 for every quarter. The sum of
    published figures tells the recipient nothing it could not add up itself. A pooled count with a
    hidden period keeps its own rounding; the attacker checks what it and its periods reveal."""
    return refresh(df, equations, counts, base)[0]


def refresh(df: pl.DataFrame, equations: list[tuple[int, list[int]]], counts: list[str], base: int,
            held=None, exact: pl.DataFrame | None = None) -> tuple[pl.DataFrame, set[int]]:
    """`from_published`, and the rows it changed. After published cells are held (`differencing`), a
    pooled row the recipient has not been sent is made again from the table as it will leave: the
    sum of its periods' figures as published (held ones as first sent), or, with a period hidden, its
    own count (`exact`: the counts the figures describe) rounded to the base; never a sum of figures
    that are not the ones sent. `held(row, count)`: a figure sent before, left as it is."""
    if POOL_OF not in df.columns or not counts:
        return df, set()
    pool_of, types = df[POOL_OF].to_list(), df["period_type"].to_list()
    tiles: dict[int, list[int]] = {}
    for t, ms in equations:  # the pooled row and the periods of the type it pools (structure.period_equations)
        if pool_of[t] is not None and all(pool_of[m] is None and types[m] == pool_of[t] for m in ms):
            if t not in tiles or len(ms) < len(tiles[t]):
                tiles[t] = ms
    if not tiles:
        return df, set()
    updates, changed = [], set()
    for c in counts:
        values, hidden = df[c].to_list(), df[f"{c}_suppressed"].to_list()
        bases = df[f"{c}_rounding_base"].to_list()
        own = exact[c].to_list() if exact is not None else None
        for t, ms in tiles.items():
            if hidden[t] or (held is not None and held(t, c)):
                continue
            if not any(hidden[m] or values[m] is None for m in ms):
                # a published 0 is exactly 0 (1 and 2 would be suppressed): only the others are uncertain
                new = sum(values[m] for m in ms), sum_base(sum(values[m] != 0 for m in ms), base)
            elif own is not None and own[t] is not None:
                new = int(own[t] / base + 0.5) * base, base  # half up, as disclosure.round_to_base
            else:
                continue
            if (values[t], bases[t]) != new:
                values[t], bases[t] = new
                changed.add(t)
        updates += [pl.Series(c, values, dtype=df.schema[c]), pl.Series(f"{c}_rounding_base", bases, dtype=pl.Int64)]
    return df.with_columns(updates), changed


def mark(df: pl.DataFrame, specs: list[dict] | None) -> pl.DataFrame:
    """`df` (as released: no `_pool_of`) with `_pool_of` again, from the pooled rows' labels."""
    labels = {s["label"]: s["period_type"] for s in specs or []}
    if "period_type" not in df.columns:
        return df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(POOL_OF))
    return df.with_columns(pl.col("period_type").replace_strict(labels, default=None, return_dtype=pl.Utf8).alias(POOL_OF))
