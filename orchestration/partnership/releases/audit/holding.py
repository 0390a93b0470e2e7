"""The audit's check of a recipient's whole holding: its ledger and the release about to leave.

The new release's figures are read from its files (as the recipient will read them), the figures
the recipient already holds from `ops.disclosure_ledger`, and the attacker (`attack`) bounds every
count from all of them together. The counts behind the figures (secure zone, never released)
come from the ledger and, for the new release, from the engine: they tell the attacker which
figures describe the same count and which relations are true of the data, nothing more. Does not
use the release builder's code.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from orchestration.partnership.releases import ledger
from orchestration.partnership.releases.audit import verdicts
from orchestration.partnership.releases.audit.attack import NEW_SEQ, Attack, attack
from orchestration.partnership.releases.protocols import Protocol

MAX_FINDINGS = 20  # the release is blocked by the first; the rest only help to see why


def release_figures(folder: Path, protocol: Protocol, pending: pl.DataFrame | None) -> pl.DataFrame:
    """The new release's figures as published in its Parquet files, with the counts behind them
    taken from `pending` (the engine's ledger rows for this release) where it has them."""
    tables = {}
    for out in ledger.controlled_outputs(protocol):
        pq = Path(folder) / "parquet" / f"{out['table']}.parquet"
        if pq.exists():
            tables[out["table"]] = pl.read_parquet(pq)
    figs = ledger.figures(protocol, tables)
    if pending is not None and pending.height:
        truth = pending.select("table_name", "cell", "figure", pl.col("true_value").alias("_t"),
                               pl.col("figure_true_value").alias("_ft"))
        figs = (figs.join(truth, on=["table_name", "cell", "figure"], how="left")
                .with_columns(pl.col("_t").alias("true_value"), pl.col("_ft").alias("figure_true_value"))
                .drop("_t", "_ft"))
    return figs.with_columns(pl.lit(NEW_SEQ, dtype=pl.Int64).alias("seq")).select("seq", *ledger.SCHEMA)


def check(folder: Path, protocol: Protocol, con: duckdb.DuckDBPyConnection | None,
          pending: pl.DataFrame | None = None, parents: dict[str, str] | None = None,
          kept: Path | None = None) -> tuple[list[str], Attack]:
    """Findings (each blocks the release) of the attacker on the recipient's holding with this
    release added. `con`: a read-only connection to the warehouse (ledger, reference geography);
    without it only the release itself is attacked. `parents`: ward -> district (read from the
    reference geography when not given). `kept`: the audit's file of blocks found clean before
    (`verdicts`), read, and written again with this run's."""
    if not ledger.controlled_outputs(protocol):
        return [], Attack()
    new = release_figures(folder, protocol, pending)
    held = ledger.holding(con, protocol.recipient_id) if con is not None else new.clear()
    if parents is None and con is not None and con.execute("select count(*) from information_schema.tables where table_schema = 'reference' "
                                       "and table_name = 'geography_wards'").fetchall()[0][0]:
        parents = dict(con.execute("select ward_code, district_code from reference.geography_wards").fetchall())
    mode = ((protocol.disclosure or {}).get("attacker") or {}).get("rounded_counts", "full_interval")
    result = attack(pl.concat([held.select(new.columns), new]), protocol.margins, parents, mode,
                    clean=None if kept is None else verdicts.read(kept))
    if kept is not None:
        verdicts.write(kept, result.clean)
    problems = [f"holding of {protocol.recipient_id}: {f}" for f in result.findings[:MAX_FINDINGS]]
    if len(result.findings) > MAX_FINDINGS:
        problems.append(f"holding of {protocol.recipient_id}: {len(result.findings) - MAX_FINDINGS} more findings")
    return problems, result
