"""The disclosure ledger: every figure each recipient has ever been sent, in the warehouse.

A recipient keeps every release it receives, so what it can work out is a question about its
whole holding, not about one release. `ops.disclosure_ledger` records, per recipient (the
protocol's `recipient.id`: two protocols to the same recipient share one holding), every cell of
every disclosure-controlled table sent to it: the table, the cell's key columns, each published
figure and its protection state (value, suppressed, rounding base, the protocol's small-count
range). A row is added when a cell's state changes, in the same transaction as the release's
`published` log entry, so the ledger and the log never disagree about what left.

Two secure-zone facts ride along, never released: the count behind each figure on the night it
was sent (`true_value`) and the count the figure was computed from (`figure_true_value`: they
differ when a figure is held from an earlier release). The audit's attacker uses them only to
know which figures describe the same count and which additive relations are true of the data.

Both the release builder (holding figures) and the audit (the attacker) read it through this
module, as both read the release log.
"""

from __future__ import annotations

import json
from datetime import date

import duckdb
import polars as pl

LEDGER_DDL = """
create schema if not exists ops;
create table if not exists ops.disclosure_ledger (
    recipient_id varchar not null,
    protocol_id varchar not null,
    seq bigint not null,              -- ops.release_log entry of the release that sent this state
    release_date date not null,
    table_name varchar not null,
    cell varchar not null,            -- the cell's key columns, as canonical JSON
    figure varchar not null,          -- the published column
    kind varchar not null,            -- count | derived
    value double,                     -- as published (null when suppressed or empty)
    suppressed boolean,
    rounding_base integer,
    suppress_from integer,
    suppress_to integer,
    true_value double,                -- secure zone only: the count that night
    figure_true_value double          -- secure zone only: the count the figure was computed from
);
"""

SCHEMA = {"table_name": pl.Utf8, "cell": pl.Utf8, "figure": pl.Utf8, "kind": pl.Utf8, "value": pl.Float64,
          "suppressed": pl.Boolean, "rounding_base": pl.Int64, "suppress_from": pl.Int64, "suppress_to": pl.Int64,
          "true_value": pl.Float64, "figure_true_value": pl.Float64}
STATE = ("value", "suppressed", "rounding_base", "true_value", "figure_true_value")


def controlled_outputs(protocol) -> list[dict]:
    """The outputs whose figures are disclosure-controlled (aggregate protocols' counts)."""
    if protocol.level != "aggregate":
        return []
    return [o for o in protocol.outputs if o.get("counts")]


def key_columns(out: dict) -> list[str]:
    """A cell's identity: every released column that is neither a count nor derived from counts."""
    figures = set(out.get("counts", [])) | set(out.get("derived_from_counts", []))
    return [c for c in out["columns"] if c not in figures]


def cell_keys(df: pl.DataFrame, keys: list[str]) -> list[str]:
    """Canonical JSON of each row's key columns (dates as ISO text), the same for builder and audit."""
    cols = [df[k].to_list() for k in keys]
    out = []
    for values in zip(*cols):
        out.append(json.dumps({k: (v.isoformat() if isinstance(v, date) else v) for k, v in zip(keys, values)},
                              sort_keys=True, default=str))
    return out


def aligned(df: pl.DataFrame, truth: pl.DataFrame | None, out: dict) -> pl.DataFrame | None:
    """`truth`'s counts for `df`'s rows, matched on the key columns (rows `truth` lacks, such as
    pooled rows added by disclosure control, get nulls); None without `truth`."""
    if truth is None:
        return None
    keys = key_columns(out)
    counts = out.get("counts", [])
    t = truth.select(keys + counts).unique(subset=keys, keep="first")
    return df.select(keys).join(t, on=keys, how="left", nulls_equal=True, maintain_order="left")


def figures(protocol, tables: dict[str, pl.DataFrame], truth: dict[str, pl.DataFrame] | None = None,
            held_truth: dict[tuple[str, str, str], float] | None = None) -> pl.DataFrame:
    """One row per published figure of the protocol's controlled tables (columns `SCHEMA`).

    `tables`: the tables as released; `truth`: the same tables' counts before disclosure control
    (matched on the key columns), when known; `held_truth`: (table, cell, figure) -> the count a
    held figure was computed from (the builder's, for figures carried from an earlier release)."""
    dc = protocol.disclosure or {}
    parts = []
    for out in controlled_outputs(protocol):
        df = tables.get(out["table"])
        if df is None or df.height == 0:
            continue
        cells = cell_keys(df, key_columns(out))
        raw = aligned(df, (truth or {}).get(out["table"]), out)
        n = df.height
        for kind, names in (("count", out.get("counts", [])), ("derived", out.get("derived_from_counts", []))):
            for f in names:
                true = raw[f].cast(pl.Float64).to_list() if raw is not None and kind == "count" else [None] * n
                fig_true = [(held_truth or {}).get((out["table"], c, f), t) for c, t in zip(cells, true)]
                parts.append(pl.DataFrame({
                    "table_name": [out["table"]] * n, "cell": cells, "figure": [f] * n, "kind": [kind] * n,
                    "value": df[f].cast(pl.Float64),
                    "suppressed": df[f"{f}_suppressed"] if kind == "count" else pl.Series([None] * n, dtype=pl.Boolean),
                    "rounding_base": df[f"{f}_rounding_base"].cast(pl.Int64) if kind == "count"
                    else pl.Series([None] * n, dtype=pl.Int64),
                    "suppress_from": [dc.get("suppress_counts_from")] * n,
                    "suppress_to": [dc.get("suppress_counts_to")] * n,
                    "true_value": true, "figure_true_value": fig_true,
                }, schema=SCHEMA))
    return pl.concat(parts) if parts else pl.DataFrame(schema=SCHEMA)


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(LEDGER_DDL)


def record(con: duckdb.DuckDBPyConnection, recipient_id: str, protocol_id: str, seq: int, release_date: date,
           rows: pl.DataFrame) -> int:
    """Add the release's figures whose state differs from the recipient's latest for that cell; the
    caller holds the transaction that logs the release. Returns the rows added."""
    ensure(con)
    if rows.height == 0:
        return 0
    before = con.execute("select count(*) from ops.disclosure_ledger").fetchall()[0][0]
    con.register("_ledger_new", rows)
    try:
        same = " and ".join(f"l.{c} is not distinct from n.{c}" for c in STATE)
        con.execute(f"""
            insert into ops.disclosure_ledger
            select ?, ?, ?, ?, n.table_name, n.cell, n.figure, n.kind, n.value, n.suppressed, n.rounding_base,
                   n.suppress_from, n.suppress_to, n.true_value, n.figure_true_value
            from _ledger_new n
            where not exists (
                select 1 from (select * from ops.disclosure_ledger where recipient_id = ?
                               qualify row_number() over (partition by table_name, cell, figure order by seq desc) = 1) l
                where l.table_name = n.table_name and l.cell = n.cell and l.figure = n.figure and {same})""",
                    [recipient_id, protocol_id, seq, release_date, recipient_id])
    finally:
        con.unregister("_ledger_new")
    return con.execute("select count(*) from ops.disclosure_ledger").fetchall()[0][0] - before


def holding(con: duckdb.DuckDBPyConnection, recipient_id: str) -> pl.DataFrame:
    """Every state of every figure the recipient has been sent, oldest first (with `seq`)."""
    if not _exists(con):
        return pl.DataFrame(schema={"seq": pl.Int64, **SCHEMA})
    df = con.sql(f"""select seq, {", ".join(SCHEMA)} from ops.disclosure_ledger where recipient_id = ?
                     order by seq, table_name, cell, figure""", params=[recipient_id]).pl()
    return df.cast({"seq": pl.Int64, **SCHEMA})


def latest(con: duckdb.DuckDBPyConnection, recipient_id: str) -> pl.DataFrame:
    """The recipient's latest state of each figure (what it holds now, cell by cell)."""
    h = holding(con, recipient_id)
    return h.group_by(["table_name", "cell", "figure"], maintain_order=True).last() if h.height else h


def _exists(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("select count(*) from information_schema.tables where table_schema = 'ops' "
                            "and table_name = 'disclosure_ledger'").fetchall()[0][0])
