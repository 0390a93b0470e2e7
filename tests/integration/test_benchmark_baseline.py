"""The benchmark's plain-DuckDB baseline does the same row checks as the contract engine.

`make bench` compares the pipeline with benchmarks/baseline.py; the comparison means something
only if the baseline quarantines exactly the rows the contracts reject. Checked here against
the violations the demo generator planted (small preset, seed 42), not against the engine."""

from __future__ import annotations

import duckdb
import polars as pl

from benchmarks import baseline
from orchestration.partnership.generator import generate


def test_the_baseline_quarantines_exactly_the_planted_violations_and_computes_falls_01(tmp_path):
    generate(tmp_path, preset="small", seed=42)
    db = tmp_path / "baseline.duckdb"
    result = baseline.run(tmp_path / "landing", tmp_path / "reference", db)

    truth = pl.read_parquet(tmp_path / "demo_truth" / "records.parquet").with_columns(
        contract=pl.concat_str("agency", pl.lit("__"), "extract"))
    planted = set(truth.filter(pl.col("violations").list.len() > 0).select("contract", "file_name", "row_number").iter_rows())
    assert planted, "the generator planted no violations"
    with duckdb.connect(str(db), read_only=True) as con:
        quarantined = set()
        for cid in result["counts"]:
            quarantined |= {(cid, f, r) for f, r in con.execute(f'select _file, _row_number from "quarantine_{cid}"').fetchall()}
        (phof_rows,), = con.execute(
            "select count(*) from falls_01 where geography_type = 'district' and breakdown = 'persons' and numerator > 0"
        ).fetchall()
    assert quarantined == planted
    rows = truth.group_by("contract").len()
    assert {c: n["rows_read"] for c, n in result["counts"].items()} == dict(rows.iter_rows())
    assert phof_rows > 0 and result["falls_01_rows"] > phof_rows
