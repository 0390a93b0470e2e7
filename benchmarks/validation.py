"""Contract validation of a 5-million-row extract, against loading the same file into DuckDB raw.

    .venv/bin/python -m benchmarks.validation [--rows 5000000] [--json OUT] [--keep CSV | --file CSV]

Writes a County Ambulance `incidents` file (about 1% of rows breaking a rule), then times, in
the same run: (1) DuckDB reading it as text into a table (the raw load), and (2) the contract
engine's read + every row rule + split into valid/quarantine + the GX batch suite. Prints both
and the ratio (target: engine ≤ 1.5 × raw load). The one-off imports of pandera's polars
backend and of Great Expectations (paid once per process, whatever the file's size) are timed
before and printed apart. `make bench` runs it too (`run_for_make_bench`). `--file` times a file
written before (by `--keep`) instead of writing one: for A/B runs of two versions on the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from orchestration.partnership.contracts.model import load_contract
from orchestration.partnership.settings import PROJECT_ROOT
from orchestration.partnership.validation.batch import run_suite
from orchestration.partnership.validation.readers import read_delivery
from orchestration.partnership.validation.rows import validate_rows

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


TARGET = 1.5


def _imports() -> float:
    """Import pandera's polars backend and GX, as the engine's first use would; seconds taken."""
    t0 = time.perf_counter()
    import pandera.polars  # noqa: F401

    from orchestration.partnership.validation.batch import _gx

    _gx()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--file", type=Path, help="time this incidents CSV (written by --keep) instead of writing one")
    ap.add_argument("--keep", type=Path, help="write the file here and keep it")
    args = ap.parse_args(argv)
    contract = load_contract(CONTRACT)
    imports_s = _imports()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or args.keep or Path(tmp) / "incidents_20261126.csv"
        if not args.file:
            write_file(path, args.rows)
        size = path.stat().st_size
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        t0, c0 = time.perf_counter(), time.process_time()
        con.execute(f"create table raw_load as select * from read_csv('{path}', all_varchar = true, header = true)")
        raw_s, raw_cpu = time.perf_counter() - t0, time.process_time() - c0
        loaded = con.execute("select count(*) from raw_load").fetchall()[0][0]
        con.close()
        t0, c0 = time.perf_counter(), time.process_time()
        text = read_delivery(path, contract)
        t1 = time.perf_counter()
        rows = validate_rows(text, contract, as_of=datetime(2026, 11, 27).date())
        t2 = time.perf_counter()
        batch = run_suite(contract, text, rows.valid, datetime(2026, 11, 27, 1, 30), "benchmark")
        t3, engine_cpu = time.perf_counter(), time.process_time() - c0
    assert loaded == text.height == rows.rows_read
    total = t3 - t0
    result = {"rows": text.height, "csv_mib": round(size / 2**20), "valid": rows.valid.height,
              "quarantined": rows.quarantine.height, "raw_load_s": round(raw_s, 2), "read_s": round(t1 - t0, 2),
              "rules_and_split_s": round(t2 - t1, 2), "gx_s": round(t3 - t2, 2), "engine_s": round(total, 2),
              "imports_s": round(imports_s, 2), "ratio": round(total / raw_s, 2), "target": TARGET,
              "met": total / raw_s <= TARGET, "load_average_1min": round(os.getloadavg()[0], 1),
              "raw_load_cpu_s": round(raw_cpu, 2), "engine_cpu_s": round(engine_cpu, 2), "cpu_ratio": round(engine_cpu / raw_cpu, 2)}
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"rows: {text.height:,} ({size / 2**20:.0f} MiB CSV); valid {rows.valid.height:,}, quarantined {rows.quarantine.height:,}")
    print(f"DuckDB raw load (read_csv, all varchar):   {raw_s:7.2f} s")
    print(f"contract engine: read {t1 - t0:.2f} s + row rules and split {t2 - t1:.2f} s + GX batch suite {t3 - t2:.2f} s"
          f" = {total:7.2f} s (one-off imports of pandera and GX before it: {imports_s:.2f} s)")
    print(f"CPU time (all threads): raw load {raw_cpu:.2f} s, engine {engine_cpu:.2f} s, ratio {engine_cpu / raw_cpu:.2f}x "
          "(less sensitive to a shared machine's load than the wall-clock ratio)")
    print(f"ratio engine / raw load: {total / raw_s:.2f}x (target <= {TARGET}x: {'met' if result['met'] else 'missed'}); batch rules: "
          + ", ".join(f"{b.rule}={'pass' if b.passed else 'fail'}" for b in batch))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def run_for_make_bench(bench: Path, rows: int = 5_000_000) -> int:
    """`make bench`'s step: this benchmark in its own process (its memory and imports apart from the
    night's), its output shown, figures in BENCH/validation.json. 0 when the target is met."""
    out = bench / "validation.json"
    print(f"contract validation of a {rows:,}-row extract vs raw DuckDB load …", flush=True)
    done = subprocess.run([sys.executable, "-m", "benchmarks.validation", "--rows", str(rows), "--json", str(out)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    print(done.stdout, end="")
    if done.returncode:
        print(done.stderr[-4000:], file=sys.stderr)
        return 1
    r = json.loads(out.read_text())
    print(f"validation / raw DuckDB load (5M-row extract): {r['ratio']:.2f}x, target <= {r['target']}x: "
          f"{'met' if r['met'] else 'missed'} (figures: {out})")
    return 0 if r["met"] else 1


if __name__ == "__main__":
    main()
