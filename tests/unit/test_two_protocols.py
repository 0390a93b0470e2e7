"""Two protocols to one recipient, built on the same night: one holding.

The first protocol sends a table of wards (one ward suppressed); the second, built after it on the
same night, sends the district for the same indicator and quarter in a table of its own. Alone, the
district tells nothing; beside the wards the recipient already holds, the district less the
published ward is the suppressed one. The builder of the second release (`protection.against_holding`
with the recipient's ledger, real DuckDB) must see the first one's cells and hide what would give
the ward away. Oracle: the brute-force recipient (tests/oracles/holding.py) over both releases."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

import orchestration.partnership.releases.protection as protection
from orchestration.partnership.releases import ledger
from orchestration.partnership.releases.audit.attack import NEW_SEQ, attack
from orchestration.partnership.releases.protocols import Protocol
from tests.oracles import holding as oracle

pytestmark = pytest.mark.dbt_free

COLUMNS = ["indicator_id", "period_type", "period_start", "geography_type", "geography_code", "breakdown", "n"]
WARDS = {"E05000001": 3, "E05000002": 26}  # the first is suppressed (1-7), the second published 25


def protocol(pid: str, table: str) -> Protocol:
    out = {"table": table, "source": "marts.x", "columns": COLUMNS, "counts": ["n"]}
    doc = {"id": pid, "version": "1.0.0", "level": "aggregate", "recipient": {"id": "the-board"}, "outputs": [out],
           "disclosure_control": {"suppress_counts_from": 1, "suppress_counts_to": 7, "rounding_base": 5,
                                  "attacker": {"rounded_counts": "full_interval"}}}
    return Protocol(doc, Path(f"{pid}.yaml"))


def rows(geo: str) -> pl.DataFrame:
    areas = WARDS.items() if geo == "ward" else [("E07000001", sum(WARDS.values()))]
    return pl.DataFrame([("I1", "quarter", date(2026, 4, 1), geo, code, "persons", n) for code, n in areas],
                        schema=COLUMNS, orient="row")


def release(con, p: Protocol, df: pl.DataFrame, seq: int, with_holding: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    table = p.outputs[0]["table"]
    latest = ledger.latest(con, p.recipient_id) if with_holding else pl.DataFrame()
    history = ledger.holding(con, p.recipient_id) if latest.height else None
    tables, truth, held_truth = protection.against_holding(con, p, {table: df}, latest if latest.height else None, history)
    pending = ledger.figures(p, tables, truth, held_truth)
    ledger.record(con, p.recipient_id, p.id, seq, date(2026, 7, 2), pending)
    return tables[table], pending


def _found_by_brute_force(holding: pl.DataFrame) -> set:
    leaves = list(WARDS)
    facts, cells = [], {}
    for c, sup, value, base in holding.select("cell", "suppressed", "value", "rounding_base").iter_rows():
        code = json.loads(c)["geography_code"]
        cells[c] = tuple(range(len(leaves))) if code not in WARDS else (leaves.index(code),)
        facts.append((0, c, ("suppressed",) if sup else ("published", value, base)))
    return oracle.analyse(cells, [tuple(WARDS.values())], facts, None, cap=sum(WARDS.values()) + 5, top=7)


def test_the_second_protocol_built_the_same_night_hides_what_the_first_ones_cells_would_give_away(tmp_path):
    wards, district = protocol("board-wards", "ward_values"), protocol("board-district", "district_values")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        first, _ = release(con, wards, rows("ward"), 1)
        assert first["n_suppressed"].to_list() == [True, False]
        second, _ = release(con, district, rows("district"), 2)
        holding = ledger.holding(con, "the-board")
    assert second["n_suppressed"].to_list() == [True], "the district would give the suppressed ward away"
    assert not attack(holding, None, None, "full_interval").flags
    assert not _found_by_brute_force(holding)


def test_built_without_the_other_protocols_cells_the_district_gives_the_ward_away(tmp_path):
    """What the test above guards against: the same second release built as if the recipient held nothing."""
    wards, district = protocol("board-wards", "ward_values"), protocol("board-district", "district_values")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        _, first = release(con, wards, rows("ward"), 1)
        second, pending = release(con, district, rows("district"), 2, with_holding=False)
        held = ledger.holding(con, "the-board").filter(pl.col("seq") == 1)
    assert second["n_suppressed"].to_list() == [False]
    holding = pl.concat([held, pending.with_columns(pl.lit(NEW_SEQ, dtype=pl.Int64).alias("seq")).select(held.columns)])
    assert "not_zero" in {k for *_, k in attack(holding, None, None, "full_interval").flags}
    assert _found_by_brute_force(holding)
