"""Disclosure control of one aggregate output, end to end: what the release engine calls.

1. pooled periods the protocol asks for are added (`pooling`);
2. every additive relation is found: the protocol's declared margins and those the table's
   structure implies (`structure`: periods, geography, breakdowns, repeated cells);
3. counts are suppressed, secondarily suppressed over all of them and rounded (`disclosure`); a
   pooled count whose periods are all published is their published sum (`pooling.from_published`);
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

TABLE = "_table"  # which output a row belongs to while outputs are protected together


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
    return protect_tables(con, protocol, {out["table"]: df})[out["table"]]


def protect_tables(con: duckdb.DuckDBPyConnection, protocol: Protocol,
                   tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The protocol's aggregate outputs with counts (table name -> its rows, exact) as they may
    leave. Outputs of the same source with the same columns are protected as one table: a cell in
    two of them is one figure published twice, so it is hidden in both or in neither."""
    dc = protocol.disclosure
    low, high, base = dc["suppress_counts_from"], dc["suppress_counts_to"], dc["rounding_base"]
    outputs = {o["table"]: o for o in protocol.outputs if o["table"] in tables}
    together: dict[tuple, list[str]] = {}
    for name, o in outputs.items():
        key = (o["source"], tuple(o["columns"]), tuple(o.get("counts", [])), tuple(o.get("derived_from_counts", [])))
        together.setdefault(key, []).append(name)
    result = {}
    for names in together.values():
        o = outputs[names[0]]
        counts, derived = o.get("counts", []), o.get("derived_from_counts", [])
        parts = [pooling.add_pooled(tables[n], dc.get("pooled_periods"), counts, derived)
                 .with_columns(pl.lit(n).alias(TABLE)) for n in names]
        df = pl.concat(parts, how="vertical_relaxed") if len(parts) > 1 else parts[0]
        exact = df["numerator"] if "numerator" in counts else None
        equations = structure.equations(df, counts, derived, area_parents(con))
        df = disclosure.apply(df, counts, derived, low, high, base, protocol.margins, equations)
        df = pooling.from_published(df, equations, counts, base)
        df = derived_figures.recompute(con, df, counts, derived, exact, low, high, base)
        for n in names:
            result[n] = df.filter(pl.col(TABLE) == n).select(disclosure.column_order(o["columns"], counts, derived))
    return result
