"""Disclosure control of one aggregate output, end to end: what the release engine calls.

1. pooled periods the protocol asks for are added (`pooling`);
2. every additive relation is found: the protocol's declared margins and those the table's
   structure implies (`structure`: periods, geography, breakdowns, repeated cells);
3. counts are suppressed, secondarily suppressed over all of them and rounded (`disclosure`); a
   pooled count whose periods are all published is their published sum (`pooling.from_published`);
4. every derived figure is computed from the protected counts (`derived`).

`against_holding` is what a release does: the same, with every cell the recipient already holds
sent again as first sent (`differencing`), pooled rows made again from the figures as sent, and
more hidden until the audit's attacker proves nothing from the recipient's whole holding
(`closing`).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

import orchestration.partnership.releases.closing as closing
import orchestration.partnership.releases.derived as derived_figures
import orchestration.partnership.releases.differencing as differencing
import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.releases.pooling as pooling
import orchestration.partnership.releases.structure as structure
from orchestration.partnership.releases import ledger
from orchestration.partnership.releases.audit import verdicts
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


def against_holding(con: duckdb.DuckDBPyConnection, protocol: Protocol, exact: dict[str, pl.DataFrame],
                    latest: pl.DataFrame | None, history: pl.DataFrame | None
                    ) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame], dict]:
    """The protocol's aggregate outputs (`exact`: table name -> its rows, exact) as they may leave to a
    recipient holding `latest` (`ledger.latest`: its figures, every protocol to it) and `history`
    (`ledger.holding`). Returns the tables, the counts behind them tonight (pooled rows added) and, per
    figure computed from other counts than tonight's ((table, cell, figure) -> count: held figures, and
    new pooled rows adding up held periods), for `ledger.figures`.

    Cells the recipient holds enter protection with the counts their figures were computed from
    (`differencing.as_held`), so a new cell that adds them up (a pooled period) describes what the
    recipient's figures describe: a late record in a held quarter never reaches it."""
    dc = protocol.disclosure
    low, high, base = dc["suppress_counts_from"], dc["suppress_counts_to"], dc["rounding_base"]
    specs = dc.get("pooled_periods")
    parents = area_parents(con)
    outputs = {o["table"]: o for o in protocol.outputs if o["table"] in exact and o.get("counts")}
    held_in = {t: differencing.as_held(o, exact[t], latest) if latest is not None else exact[t]
               for t, o in outputs.items()}
    protected = protect_tables(con, protocol, {**exact, **held_in})
    truth, held_truth = {}, {}
    for t, out in outputs.items():
        counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
        truth[t] = pooling.add_pooled(exact[t], specs, counts, derived)
        described = pooling.add_pooled(held_in[t], specs, counts, derived)
        if latest is None or latest.height == 0:
            continue
        protected[t], held = differencing.hold(protocol, out, protected[t], held_in[t], latest, parents)
        held_truth.update(held)
        protected[t] = _pools_as_sent(con, protocol, out, protected[t], described, held, parents)
        # a new pooled row adding up held periods describes their counts as sent, not tonight's
        cells = ledger.cell_keys(protected[t], ledger.key_columns(out))
        now, then = ledger.aligned(protected[t], truth[t], out), ledger.aligned(protected[t], described, out)
        for f in counts:
            for c, a, b in zip(cells, now[f].to_list(), then[f].to_list()):
                if (t, c, f) not in held_truth and a is not None and b is not None and a != b:
                    held_truth[(t, c, f)] = float(b)
    tables = closing.close(protocol, protected, truth, held_truth, history, parents, _audited(con, protocol))
    return tables, truth, held_truth


def _audited(con: duckdb.DuckDBPyConnection, protocol: Protocol) -> set[str]:
    """The blocks the audit found clean in this protocol's last release (`audit.verdicts`, kept beside
    the warehouse file open on `con`): the builder need not attack them again, the audit does."""
    rows = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchall()
    return verdicts.read(verdicts.path_for(Path(rows[0][0]), protocol.id)) if rows and rows[0][0] else set()


def _pools_as_sent(con, protocol: Protocol, out: dict, df: pl.DataFrame, described: pl.DataFrame, held: dict,
                   parents) -> pl.DataFrame:
    """`df` (held cells as first sent) with its new pooled rows made again from the figures as they
    will leave (`pooling.refresh`) and their derived figures computed from those."""
    dc = protocol.disclosure
    counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
    marked = pooling.mark(df, dc.get("pooled_periods"))
    cells = ledger.cell_keys(marked, ledger.key_columns(out))
    equations = structure.equations(marked, counts, derived, parents)
    exact = ledger.aligned(marked, described, out)
    marked, changed = pooling.refresh(marked, equations, counts, dc["rounding_base"],
                                      held=lambda i, f: (out["table"], cells[i], f) in held, exact=exact)
    if not changed:
        return df
    rows = sorted(changed)
    if derived:
        part = marked[rows]
        part = derived_figures.recompute(con, part, counts, derived, exact["numerator"][rows] if "numerator" in counts else None,
                                         dc["suppress_counts_from"], dc["suppress_counts_to"], dc["rounding_base"])
        marked = marked.with_row_index("_i").update(part.with_columns(pl.Series("_i", rows, dtype=pl.UInt32)),
                                                    on="_i", include_nulls=True).drop("_i")
    return marked.select(df.columns)
