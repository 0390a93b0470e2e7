"""Disclosure control of one aggregate output, end to end: what the release engine calls.

1. pooled periods the protocol asks for are added (`pooling`);
2. every additive relation is found: the protocol's declared margins and those the table's
   structure implies (`structure`: periods, geography, breakdowns, repeated cells);
3. counts are suppressed, secondarily suppressed over all of them and rounded (`disclosure`);
4. every derived figure is computed from the protected counts (`derived`).
"""

from __future__ import annotations

import duckdb
import polars as pl

import orchestration.partnership.releases.derived as derived_figures
import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.releases.pooling as pooling
import orchestration.partnership.releases.structure as structure
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.warehouse.connection import table_exists


def area_parents(con: duckdb.DuckDBPyConnection) -> dict[str, str] | None:
    """Area code -> the code of the area it lies within, from the reference geography (wards in
    districts, LSOAs in wards); None when the warehouse has none."""
    parents: dict[str, str] = {}
    if table_exists(con, "reference", "geography_wards"):
        parents.update(dict(con.execute("select ward_code, district_code from reference.geography_wards").fetchall()))
    if table_exists(con, "reference", "geography_lsoas"):
        parents.update(dict(con.execute("select lsoa_code, ward_code from reference.geography_lsoas").fetchall()))
    return parents or None


def protect(con: duckdb.DuckDBPyConnection, df: pl.DataFrame, out: dict, protocol: Protocol) -> pl.DataFrame:
    """One output's rows (read from the warehouse, exact) as they may leave: pooled rows added,
    counts protected over every additive relation, derived figures from the protected counts,
    columns in the protocol's order with the typed suppression columns."""
    counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
    dc = protocol.disclosure
    low, high, base = dc["suppress_counts_from"], dc["suppress_counts_to"], dc["rounding_base"]
    df = pooling.add_pooled(df, dc.get("pooled_periods"), counts, derived)
    exact = df["numerator"] if "numerator" in counts else None
    equations = structure.equations(df, counts, derived, area_parents(con))
    df = disclosure.apply(df, counts, derived, low, high, base, protocol.margins, equations)
    df = derived_figures.recompute(con, df, counts, derived, exact, low, high, base)
    return df.select(disclosure.column_order(out["columns"], counts, derived))
