"""The benchmark's plain-DuckDB baseline does the same row checks as the contract engine.

`make bench` compares the pipeline with benchmarks/baseline.py; the comparison means something
only if the baseline quarantines exactly the rows the contracts reject. Checked here against
the violations the demo generator planted (small preset, seed 42), not against the engine."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from benchmarks import baseline
from orchestration.partnership.demo import generate

pytestmark = pytest.mark.dbt_free


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


def test_replicated_history_is_the_same_rows_under_new_keys_and_judged_alike(tmp_path):
    """`make bench BENCH_ARGS='--replicate N'` adds copies of each nightly extract's history to
    measure volume beyond the presets; a copy must be judged as its original (same format, same
    rules broken) with every key new, or the figures would not be of the same work."""
    from datetime import datetime

    from benchmarks.run import replicate
    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.settings import PROJECT_ROOT
    from orchestration.partnership.validation.engine import assess_rows

    gen = tmp_path / "gen"
    generate(gen, preset="small", seed=42)
    night = tmp_path / "night"
    added = replicate(gen, night, 3)
    contracts = load_contracts(PROJECT_ROOT / "contracts" / "agencies")
    nightly_csv = {cid for cid, c in contracts.items() if c.delivery.cadence == "nightly" and c.format.type == "csv"}
    assert set(added) == nightly_csv
    for cid in sorted(nightly_csv):
        c = contracts[cid]
        (original,) = sorted((gen / "landing" / c.agency / c.extract).glob("*_history_*"))
        copies = sorted((night / "landing" / c.agency / c.extract).glob("*_history_r*"))
        assert [p.name for p in copies] == [original.name.replace("_history_", f"_history_r{i}_") for i in (1, 2)]
        assert added[cid] == 2 * (len(original.read_bytes().splitlines()) - 1)
        when = datetime(2026, 11, 25, 6, 0)
        a, _ = assess_rows(original, c, file_name=original.name, sha256="o", arrived_at=when)
        key = c.key_columns[0]
        for i, copy in enumerate(copies, start=1):
            assert copy.stat().st_mtime == original.stat().st_mtime  # the same arrival time
            assert copy.read_bytes().startswith(b"\xef\xbb\xbf") == original.read_bytes().startswith(b"\xef\xbb\xbf")
            b, _ = assess_rows(copy, c, file_name=copy.name, sha256="c", arrived_at=when)
            assert (b.status, b.due_at, b.rows_read) == (a.status, a.due_at, a.rows_read), cid
            assert {r.rule: r.failing_rows for r in b.rules} == {r.rule: r.failing_rows for r in a.rules}, cid
            keys_a = a.text.get_column(key).to_list()
            keys_b = b.text.get_column(key).to_list()
            assert keys_b == [None if k is None else f"{k}-R{i}" for k in keys_a], cid
