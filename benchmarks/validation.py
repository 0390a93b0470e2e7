"""Contract validation of a 5-million-row extract, against loading the same file into DuckDB raw.

    .venv/bin/python -m benchmarks.validation [--rows 5000000]

Writes a County Ambulance `incidents` file (about 1% of rows breaking a rule), then times, in
the same run: (1) DuckDB reading it as text into a table (the raw load), and (2) the contract
engine's read + every row rule + split into valid/quarantine + the GX batch suite. Prints both
and the ratio (target: engine ≤ 1.5 × raw load).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from orchestration.partnership.contracts import load_contract
from orchestration.partnership.gx_batch import run_suite
from orchestration.partnership.readers import read_delivery
from orchestration.partnership.settings import PROJECT_ROOT
from orchestration.partnership.validation import validate_rows

CONTRACT = PROJECT_ROOT / "contracts" / "agencies" / "county_ambulance" / "incidents.odcs.yaml"


def _nhs(rng, n):
    body = rng.integers(100_000_000, 999_999_999, n)
    digits = np.array([(body // 10 ** (8 - i)) % 10 for i in range(9)])
    check = 11 - (digits * np.arange(10, 1, -1)[:, None]).sum(axis=0) % 11
    check = np.where(check == 11, 0, check)
    ok = check != 10
    value = pl.Series(np.char.add(body.astype(str), check.astype(str)))
    return pl.select(pl.when(pl.lit(pl.Series(ok))).then(pl.lit(value))).to_series().alias("nhs_number")


def write_file(path: Path, n: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    ts = int(datetime(2026, 1, 1).timestamp()) + rng.integers(0, 300 * 86400, n)
    # Integers cast to polars temporals (from_numpy refuses datetime64[s] on polars 2.x).
    dob_days = (np.datetime64("1930-01-01", "D") - np.datetime64("1970-01-01", "D")).astype(int) + rng.integers(0, 30000, n)
    df = pl.DataFrame({
        "incident_id": [f"INC{i:09d}" for i in range(n)],
        "incident_datetime": pl.Series(ts * 1_000_000).cast(pl.Datetime("us")).dt.strftime("%Y-%m-%dT%H:%M:%S"),
        "nhs_number": _nhs(rng, n),
        "forename": rng.choice(["Ann", "Bob", "Chloé", "Dev", "O'Neil"], n),
        "surname": rng.choice(["Smith", "Jones", "Patel", "Nguyen"], n),
        "date_of_birth": pl.Series(dob_days).cast(pl.Int32).cast(pl.Date).dt.strftime("%Y-%m-%d"),
        "sex": rng.choice(["M", "F", "U", "X"], n, p=[0.495, 0.495, 0.005, 0.005]),
        "postcode": rng.choice(["RV1 2AB", "RV12AB", "RV3 9ZZ", "BAD"], n, p=[0.5, 0.3, 0.195, 0.005]),
        "chief_complaint": rng.choice(["FALL", "BREATHING", "CHEST_PAIN", "OTHER"], n),
        "conveyed": rng.choice(["Y", "N"], n),
    })
    df.write_csv(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    args = ap.parse_args()
    contract = load_contract(CONTRACT)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "incidents_20261126.csv"
        write_file(path, args.rows)
        size = path.stat().st_size
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        t0 = time.perf_counter()
        con.execute(f"create table raw_load as select * from read_csv('{path}', all_varchar = true, header = true)")
        raw_s = time.perf_counter() - t0
        loaded = con.execute("select count(*) from raw_load").fetchall()[0][0]
        con.close()
        t0 = time.perf_counter()
        text = read_delivery(path, contract)
        t1 = time.perf_counter()
        rows = validate_rows(text, contract, as_of=datetime(2026, 11, 27).date())
        t2 = time.perf_counter()
        batch = run_suite(contract, text, rows.valid, datetime(2026, 11, 27, 1, 30), "benchmark")
        t3 = time.perf_counter()
    assert loaded == text.height == rows.rows_read
    total = t3 - t0
    print(f"rows: {text.height:,} ({size / 2**20:.0f} MiB CSV); valid {rows.valid.height:,}, quarantined {rows.quarantine.height:,}")
    print(f"DuckDB raw load (read_csv, all varchar):   {raw_s:7.2f} s")
    print(f"contract engine: read {t1 - t0:.2f} s + row rules and split {t2 - t1:.2f} s + GX batch suite {t3 - t2:.2f} s"
          f" = {total:7.2f} s")
    print(f"ratio engine / raw load: {total / raw_s:.2f}x (target <= 1.5x); batch rules: "
          + ", ".join(f"{b.rule}={'pass' if b.passed else 'fail'}" for b in batch))


if __name__ == "__main__":
    main()
