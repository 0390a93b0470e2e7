"""Statistical disclosure control for aggregate outputs, as typed columns.

A count is published as three columns: the value (null when suppressed), whether it was
suppressed, and the rounding base applied. Never a magic string in a numeric column.
"""

from __future__ import annotations

import polars as pl


def round_to_base(x: pl.Expr, base: int) -> pl.Expr:
    """Round half up to the nearest multiple of `base` (7.5 → 10 with base 5)."""
    return ((x.cast(pl.Float64) / base + 0.5).floor() * base).cast(pl.Int64)


def apply(df: pl.DataFrame, counts: list[str], derived: list[str], low: int, high: int, base: int) -> pl.DataFrame:
    """Suppress counts in [low, high], round the rest to `base`, withhold derived values
    (rates, intervals) of any row with a suppressed count."""
    exprs = []
    for c in counts:
        suppressed = pl.col(c).is_not_null() & (pl.col(c) >= low) & (pl.col(c) <= high)
        exprs += [
            pl.when(suppressed).then(None).otherwise(round_to_base(pl.col(c), base)).alias(c),
            suppressed.alias(f"{c}_suppressed"),
            pl.lit(base, dtype=pl.Int64).alias(f"{c}_rounding_base"),
        ]
    out = df.with_columns(exprs)
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
