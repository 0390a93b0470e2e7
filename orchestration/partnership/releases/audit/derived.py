"""The audit's reading of a release's derived figures: each must follow from the published counts.

Independent of the builder (`derived.py` computes with the warehouse's statistics functions):
plain arithmetic on the published numbers, for the figures that need no more than that — a
percentage is 100 × numerator / denominator, a count indicator's value is its count. A value
that does not is a warehouse figure that escaped, which could give the true counts back.
"""

from __future__ import annotations

import math

import polars as pl

REL_TOL = 1e-9


def problems(table: str, df: pl.DataFrame) -> list[str]:
    """Findings (counts of rows, never values) for an indicator-shaped table; none for others."""
    needed = {"numerator", "denominator", "value", "unit"}
    if not needed <= set(df.columns):
        return []
    wrong_pct = wrong_count = 0
    for num, den, value, unit in df.select("numerator", "denominator", "value", "unit").iter_rows():
        if value is None:
            continue
        if unit == "percent":
            if num is None or not den or not math.isclose(value, 100 * num / den, rel_tol=REL_TOL, abs_tol=REL_TOL):
                wrong_pct += 1
        elif den is None and (num is None or not math.isclose(value, num, rel_tol=REL_TOL, abs_tol=REL_TOL)):
            wrong_count += 1
    out = []
    if wrong_pct:
        out.append(f"{table}: {wrong_pct} percentages are not those of the published counts")
    if wrong_count:
        out.append(f"{table}: {wrong_count} count values differ from the published counts")
    return out
