"""The ingest step alone, on a fresh data folder: registration, then each extract's step as the
night's ingestion assets run them (`register_deliveries`, `process_extract`, the GX worker
started first), timed per phase; and a comparison of two warehouses' loaded rows.

    .venv/bin/python -m benchmarks.ingest run DATA_DIR OUT.json [--only CONTRACT[,CONTRACT]]
    .venv/bin/python -m benchmarks.ingest compare WAREHOUSE_A WAREHOUSE_B

`run` measures a child process (wall time, peak memory of its tree: benchmarks.measure) that
loads whatever is in DATA_DIR/landing into DATA_DIR/warehouse.duckdb. The environment needs
PARTNERSHIP_PSEUDONYM_KEY (benchmarks.run.KEY gives the benchmark's pseudonyms).

`compare` checks that every table of raw, valid, quarantine and identity holds the same rows in
both warehouses (EXCEPT ALL both ways, so duplicates count), and the deliveries' outcomes. Tables
are compared on the columns both hold; an `identity` table may hold columns the other does not
(one written before `identity` stopped keeping pseudonyms), and they are named; in any other
schema a difference of columns is a difference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SCHEMAS = ("raw", "valid", "quarantine", "identity")


def _child(data_dir: Path, out: Path, only: list[str] | None) -> int:
    os.environ["PARTNERSHIP_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from orchestration.partnership.catalogue import contracts
    from orchestration.partnership.ingest.night import (
        process_extract,
        register_deliveries,
    )
    from orchestration.partnership.settings import get_settings
    from orchestration.partnership.validation.batch import start_worker, stop_worker

    start_worker()  # as a night does, first thing: suites run on the other core
    settings = get_settings()
    result: dict = {"extracts": {}}
    try:
        t0 = time.perf_counter()
        result["registered"] = len(register_deliveries(settings, contracts()))
        result["register_seconds"] = time.perf_counter() - t0
        for cid, contract in contracts().items():
            if only and cid not in only:
                continue
            t = time.perf_counter()
            o = process_extract(settings, contract)
            result["extracts"][cid] = {"seconds": time.perf_counter() - t, "phases": o.seconds, "accepted": o.accepted,
                                       "rejected": o.rejected, "rows_read": o.rows_read, "rows_valid": o.rows_valid,
                                       "rows_quarantined": o.rows_quarantined}
            print(cid, json.dumps(result["extracts"][cid], default=round), flush=True)
        result["ingest_seconds"] = time.perf_counter() - t0
    finally:
        stop_worker()
    phases: dict[str, float] = {}
    for e in result["extracts"].values():
        for k, v in e["phases"].items():
            phases[k] = phases.get(k, 0.0) + v
    result["phases"] = phases
    result["rows_read"] = sum(e["rows_read"] for e in result["extracts"].values())
    out.write_text(json.dumps(result, indent=1))
    return 0


def run(data_dir: Path, out: Path, only: list[str] | None) -> dict:
    from benchmarks.measure import run as measured

    child_out = out.with_suffix(".child.json")
    cmd = [sys.executable, "-m", "benchmarks.ingest", "_child", str(data_dir), str(child_out)]
    if only:
        cmd += ["--only", ",".join(only)]
    m = measured(cmd, out.with_suffix(".log"), cwd=Path(__file__).resolve().parents[1])
    result = json.loads(child_out.read_text()) if child_out.exists() else {}
    result.update(returncode=m.returncode, wall_seconds=m.wall_seconds, peak_tree_gib=m.peak_tree_gib,
                  peak_process_gib=m.peak_process_gib, mean_load=m.mean_load)
    out.write_text(json.dumps(result, indent=1))
    return result


def compare(a: Path, b: Path) -> dict:
    """Rows in one warehouse's loaded tables and not the other's, per table (both ways), and deliveries that differ."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    tables = lambda db: {tuple(r) for r in con.execute(  # noqa: E731
        "select schema_name, table_name from duckdb_tables() where database_name = ? and list_contains(?, schema_name)",
        [db, list(SCHEMAS)]).fetchall()}
    ta, tb = tables("a"), tables("b")
    report: dict = {"only_in_a": sorted(map(".".join, ta - tb)), "only_in_b": sorted(map(".".join, tb - ta)), "tables": {}}
    columns = lambda db, s, t: [r[0] for r in con.execute(  # noqa: E731
        "select column_name from duckdb_columns() where database_name = ? and schema_name = ? and table_name = ? "
        "order by column_index", [db, s, t]).fetchall()]
    for s, t in sorted(ta & tb):
        q = f'"{s}"."{t}"'
        ca, cb = columns("a", s, t), columns("b", s, t)
        shared = ", ".join(f'"{c}"' for c in ca if c in cb)
        n_a = con.execute(f"select count(*) from a.{q}").fetchone()[0]
        n_b = con.execute(f"select count(*) from b.{q}").fetchone()[0]
        a_not_b = con.execute(f"select count(*) from (select {shared} from a.{q} except all select {shared} from b.{q})").fetchone()[0]
        b_not_a = con.execute(f"select count(*) from (select {shared} from b.{q} except all select {shared} from a.{q})").fetchone()[0]
        report["tables"][f"{s}.{t}"] = {"rows_a": n_a, "rows_b": n_b, "a_not_b": a_not_b, "b_not_a": b_not_a}
        if ca != cb:  # compared on the columns both hold; the others are named
            report["tables"][f"{s}.{t}"].update(columns_only_in_a=[c for c in ca if c not in cb],
                                                columns_only_in_b=[c for c in cb if c not in ca])
        if s != "identity" and ca != cb:
            report.setdefault("columns_differ", []).append(f"{s}.{t}")
    cols = ("delivery_id, contract_id, file_name, sha256, status, reason_code, reason, contract_version, rows_read, "
            "rows_valid, rows_quarantined, rule_counts::varchar, warnings::varchar")
    report["deliveries_differ"] = con.execute(
        f"select count(*) from ((select {cols} from a.ops.deliveries except all select {cols} from b.ops.deliveries) "
        f"union all (select {cols} from b.ops.deliveries except all select {cols} from a.ops.deliveries))").fetchone()[0]
    report["identical"] = (not report["only_in_a"] and not report["only_in_b"] and report["deliveries_differ"] == 0
                           and not report.get("columns_differ")
                           and all(v["a_not_b"] == 0 == v["b_not_a"] and v["rows_a"] == v["rows_b"]
                                   for v in report["tables"].values()))
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "_child"):
        p = sub.add_parser(name)
        p.add_argument("data_dir", type=Path)
        p.add_argument("out", type=Path)
        p.add_argument("--only", default="")
    p = sub.add_parser("compare")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "compare":
        report = compare(args.a, args.b)
        print(json.dumps(report, indent=1))
        return 0 if report["identical"] else 1
    only = [c for c in args.only.split(",") if c] or None
    if args.cmd == "_child":
        return _child(args.data_dir.resolve(), args.out, only)
    result = run(args.data_dir.resolve(), args.out.resolve(), only)
    print(json.dumps({k: v for k, v in result.items() if k != "extracts"}, indent=1, default=str))
    return result.get("returncode", 1)


if __name__ == "__main__":
    raise SystemExit(main())
