"""`make bench`: a full night and an incremental night at county scale, beside a plain-DuckDB baseline.

    .venv/bin/python -m benchmarks.run [--preset county|district|region] [--replicate N] [--seed 42] [--bench-dir DIR] [--no-docs]

1. Generates the demo partnership once (cached in DIR/gen-<preset>-<seed>/ by preset and seed).
   At county the nightly extracts' history is landed 16 times over by default (`replicate()`):
   the county night at tens of millions of rows; `--replicate 1` is the
   preset's own, realistic volume.
2. Full night from empty: every delivery except the last night's nightly files, in a fresh data
   folder (files hard-linked from the cache), run as `partnership run` runs it, in a child
   process; wall time per stage from the run's Dagster event log, peak memory of the process tree.
3. Incremental night: the last night's nightly files land on top; the night runs again. Proves
   from ops.deliveries and the raw tables that no delivery already processed was read into,
   validated or loaded again.
4. Baseline: the same files, the same row rules and FALLS-01 in plain DuckDB SQL
   (benchmarks/baseline.py), in a child process; checked against the pipeline's own counts and
   FALLS-01 values, and the ratio of each shared stage to it.

Prints a table, writes DIR/results.json and the figures section of docs/benchmarks.md; then the
5M-row validation benchmark, disclosure control with the audit's attacker per protocol, and the
portal's pages on the night's folder (benchmarks/validation.py, benchmarks/disclosure.py,
benchmarks/attack_night.py, benchmarks/portal.py), each run whatever the others found. Exit 1
when a target is missed (the figures are still written). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb

from benchmarks.figures import (  # noqa: F401  (dbt_commands: the benchmark-log test reads it from here)
    DEFAULT_COPIES, DOCS, FALLS_01_MODEL, KEY, TARGETS, VALIDATION_PHASES, copies_suffix, dbt_commands, default_copies, evaluate, figures_key,
    machine, markdown, markers, ratio, replicas, results_name, stages, table, write_docs,
)
from benchmarks.measure import Measured
from benchmarks.measure import run as measured
from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.settings import PROJECT_ROOT


# ----------------------------------------------------------------------------- preparation

def generated(bench: Path, preset: str, seed: int) -> tuple[Path, dict]:
    """The generator's output for (preset, seed), made once."""
    gen = bench / f"gen-{preset}-{seed}"
    marker = gen / ".bench-complete.json"
    if marker.exists():
        return gen, json.loads(marker.read_text())
    shutil.rmtree(gen, ignore_errors=True)
    bench.mkdir(parents=True, exist_ok=True)
    print(f"generating the {preset} preset (seed {seed}) into {gen} …", flush=True)
    m = measured([sys.executable, "-m", "orchestration.partnership.demo", str(gen), "--preset", preset,
                  "--seed", str(seed)], bench / f"gen-{preset}-{seed}.log")
    if m.returncode:
        raise SystemExit(f"the generator failed; see {bench / f'gen-{preset}-{seed}.log'}")
    info = {"seconds": m.wall_seconds, "peak_tree_gib": m.peak_tree_gib,
            "manifest": json.loads((gen / "demo_truth" / "manifest.json").read_text())}
    marker.write_text(json.dumps(info, indent=2))
    return gen, info


def held_back(gen: Path, as_of: date) -> list[str]:
    """The last night's files of every nightly extract: the incremental night's deliveries."""
    last = (as_of - timedelta(days=1)).strftime("%Y%m%d")
    out = []
    for c in load_contracts(PROJECT_ROOT / "contracts" / "agencies").values():
        if c.delivery.cadence != "nightly":
            continue
        folder = gen / "landing" / c.agency / c.extract
        out += [str(p.relative_to(gen / "landing")) for p in sorted(folder.glob(f"*_{last}.*"))]
    return out


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # same bytes and mtime (the arrival time), no copy; the pipeline never modifies landing
    except OSError:
        shutil.copy2(src, dst)


def fresh_data_dir(gen: Path, night: Path, exclude: set[str]) -> None:
    shutil.rmtree(night, ignore_errors=True)
    night.mkdir(mode=0o700, parents=True)  # a night refuses a data folder other accounts can read
    for sub in ("landing", "reference"):
        for p in sorted((gen / sub).rglob("*")):
            rel = p.relative_to(gen / sub)
            if p.is_file() and not (sub == "landing" and str(rel) in exclude):
                _link(p, night / sub / rel)


def replicate(gen: Path, night: Path, copies: int) -> dict[str, int]:
    """Volume beyond the presets (`--replicate N`): N - 1 more copies of the two-year history file of
    every nightly CSV extract, landed beside it, each row's key suffixed (`-R1`, `-R2`, …) so that it
    is a new record of the same person and event. Same format, encoding, delimiter and arrival time
    as the original; the file date stays last in the name. The people do not change (linkage sees
    more records per person, not more people) and indicators count every copy: figures for speed
    and memory at volume, not for quality. Returns the rows added per contract."""
    import polars as pl

    added: dict[str, int] = {}
    if copies <= 1:
        return added
    for cid, c in load_contracts(PROJECT_ROOT / "contracts" / "agencies").items():
        if c.delivery.cadence != "nightly" or c.format.type != "csv":
            continue
        for src in sorted((gen / "landing" / c.agency / c.extract).glob("*_history_*")):
            raw = src.read_bytes()
            df = pl.read_csv(raw.decode(c.format.encoding).encode(), separator=c.format.delimiter,
                             quote_char=c.format.quote, infer_schema=False)
            eol = "\r\n" if b"\r\n" in raw[:4096] else "\n"
            key = c.key_columns[0]
            st = src.stat()
            for i in range(1, copies):
                dst = night / "landing" / c.agency / c.extract / src.name.replace("_history_", f"_history_r{i}_", 1)
                text = df.with_columns(pl.col(key) + f"-R{i}").write_csv(
                    separator=c.format.delimiter, quote_char=c.format.quote, line_terminator=eol)
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(text.encode(c.format.encoding))  # utf-8-sig writes the BOM again
                os.utime(dst, (st.st_atime, st.st_mtime))
                added[cid] = added.get(cid, 0) + df.height
    return added


def child_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTNERSHIP_", "DAGSTER_"))}
    env.update(PARTNERSHIP_PSEUDONYM_KEY=KEY, GX_ANALYTICS_ENABLED="false", PARTNERSHIP_DATA_DIR=str(data_dir))
    return env


def run_night(night: Path, run_date: date, label: str) -> tuple[Measured, dict]:
    out = night / f"bench-{label}.json"
    print(f"{label} night ({run_date}) …", flush=True)
    m = measured([sys.executable, "-m", "benchmarks.night", str(night), run_date.isoformat(), str(out)],
                 night / f"bench-{label}.log", env=child_env(night), cwd=PROJECT_ROOT)
    if not out.exists():
        raise SystemExit(f"the {label} night did not finish; see {night / f'bench-{label}.log'}")
    return m, json.loads(out.read_text())


# ----------------------------------------------------------------------------- warehouse facts

def deliveries(warehouse: Path) -> dict[int, dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute("""select delivery_id, contract_id, landing_path, status, processed_at, rows_read,
                                    rows_valid, rows_quarantined from ops.deliveries order by delivery_id""")
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        raw = {}
        for (t,) in con.execute("select table_name from information_schema.tables where table_schema = 'raw'").fetchall():
            for did, n in con.execute(f'select _delivery_id, count(*) from raw."{t}" group by 1').fetchall():
                raw[did] = n
    for r in rows:
        r["raw_rows"] = raw.get(r["delivery_id"], 0)
    return {r["delivery_id"]: r for r in rows}


def incremental_proof(before: dict[int, dict], after: dict[int, dict], new_files: list[str]) -> dict:
    """Deliveries processed before are untouched; exactly the new files were registered and processed."""
    changed = [d for d, r in before.items() if after.get(d) != r]
    new = [r for d, r in after.items() if d not in before]
    return {
        "old_deliveries": len(before), "old_deliveries_changed": len(changed),
        "new_deliveries": len(new), "new_files": len(new_files),
        "new_are_the_new_files": sorted(r["landing_path"] for r in new) == sorted(new_files),
        "new_rows_read": sum(r["rows_read"] or 0 for r in new),
        "new_statuses": sorted({r["status"] for r in new}),
    }


def pipeline_counts(warehouse: Path) -> dict[str, dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("""select contract_id, count(*), sum(rows_read), sum(rows_quarantined) from ops.deliveries
                              where status = 'accepted' group by 1""").fetchall()
    return {c: {"files": n, "rows_read": int(r), "rows_quarantined": int(qq)} for c, n, r, qq in rows}


def compare_falls_01(warehouse: Path, baseline_db: Path) -> dict:
    """The baseline's FALLS-01 against the mart's: numerators equal, values and limits within 1e-6 relative."""
    with duckdb.connect(str(baseline_db), read_only=True) as con:
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        (n, num_bad, val_bad, ci_bad, missing), = con.execute("""
            select count(*), count(*) filter (where b.numerator is distinct from m.numerator),
                   count(*) filter (where abs(coalesce(b.value, -1) - coalesce(m.value, -1)) > 1e-6 * greatest(abs(m.value), 1)),
                   count(*) filter (where abs(coalesce(b.lower_ci, -1) - coalesce(m.lower_ci, -1)) > 1e-4 * greatest(abs(m.lower_ci), 1)
                                       or abs(coalesce(b.upper_ci, -1) - coalesce(m.upper_ci, -1)) > 1e-4 * greatest(abs(m.upper_ci), 1)),
                   count(*) filter (where b.numerator is null)
            from wh.marts.fct_indicator_values m
            left join falls_01 b using (period_type, period_start, geography_type, geography_code, breakdown)
            where m.indicator_id = 'FALLS-01'""").fetchall()
    return {"mart_rows": n, "numerator_mismatches": num_bad, "value_mismatches": val_bad, "ci_mismatches": ci_bad,
            "missing_in_baseline": missing}


def compare_quarantine(warehouse: Path, baseline_db: Path) -> dict:
    """Row by row: the baseline quarantines the same rows of the same files, for the same rules, as the pipeline."""
    with duckdb.connect(str(baseline_db), read_only=True) as con:
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        compared = differing = 0
        for (cid,) in con.execute("select distinct contract_id from wh.ops.deliveries where status = 'accepted'").fetchall():
            if not con.execute("select count(*) from information_schema.tables where table_catalog = current_database() "
                               "and table_name = ?", [f"quarantine_{cid}"]).fetchall()[0][0]:
                continue
            (n, diff), = con.execute(f"""
                with p as (select d.file_name as f, q._row_number as r, list_sort(q._rules) as rules
                           from wh.quarantine."{cid}" q join wh.ops.deliveries d on d.delivery_id = q._delivery_id),
                     b as (select _file as f, _row_number as r, list_sort(_rules) as rules from "quarantine_{cid}")
                select count(*), count(*) filter (where p.rules is distinct from b.rules)
                from p full join b using (f, r)""").fetchall()
            compared += n
            differing += diff
    return {"quarantined_rows_compared": compared, "rows_differing": differing}


def falls_01_chain(project_dir: Path) -> set[str]:
    """The dbt models and seeds FALLS-01 is computed from (its ancestors and itself)."""
    manifest = json.loads((project_dir / "target" / "manifest.json").read_text())
    parents = manifest["parent_map"]
    seen, todo = set(), [FALLS_01_MODEL]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo += [p for p in parents.get(n, []) if p.startswith(("model.", "seed."))]
    return seen


# ----------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="county")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bench-dir", type=Path,
                    default=Path(os.environ.get("PARTNERSHIP_BENCH_DIR") or Path(tempfile.gettempdir()) / "partnership-bench"))
    ap.add_argument("--replicate", type=int, default=None, metavar="N",
                    help="N copies of each nightly extract's history (volume beyond the preset; see replicate()); "
                         f"default {DEFAULT_COPIES} by preset, else 1")
    ap.add_argument("--no-docs", action="store_true", help="print and write results.json only")
    ap.add_argument("--render", action="store_true", help="measure nothing: print and write the figures of DIR/results.json")
    ap.add_argument("--portal-args", default="", metavar="ARGS",
                    help="arguments for benchmarks.portal, run last on this night's folder (e.g. --portal-args='--repeat 5')")
    a = ap.parse_args(argv)
    if a.replicate is None:
        a.replicate = default_copies(a.preset)
    if a.replicate < 1:
        ap.error(f"--replicate {a.replicate}: give 1 (the preset's own volume) or more copies")
    bench = a.bench_dir.resolve()
    if a.render:
        return report(json.loads((bench / results_name(a.replicate)).read_text()), a.no_docs, bench)
    gen, gen_info = generated(bench, a.preset, a.seed)
    as_of = date.fromisoformat(gen_info["manifest"]["as_of"])
    new_files = held_back(gen, as_of)
    night = bench / f"night-{a.preset}-{a.seed}{copies_suffix(a.replicate)}"
    fresh_data_dir(gen, night, set(new_files))
    replicated = replicate(gen, night, a.replicate)
    warehouse = night / "warehouse.duckdb"

    # 1. full night from empty
    m1, n1 = run_night(night, as_of - timedelta(days=1), "full")
    if not n1["success"]:
        return failed_night(n1, m1, bench / results_name(a.replicate))
    before = deliveries(warehouse)
    counts_pipeline = pipeline_counts(warehouse)
    # 3. baseline, same files (before the incremental files land)
    print("baseline (plain DuckDB) …", flush=True)
    base_out, base_db = bench / "baseline.json", bench / "baseline.duckdb"
    mb = measured([sys.executable, "-m", "benchmarks.baseline", str(night / "landing"), str(night / "reference"),
                   str(base_db), str(base_out)], bench / "baseline.log", cwd=PROJECT_ROOT)
    if mb.returncode:
        raise SystemExit(f"the baseline failed; see {bench / 'baseline.log'}")
    base = json.loads(base_out.read_text())
    falls_check = compare_falls_01(warehouse, base_db)
    quarantine_check = compare_quarantine(warehouse, base_db)
    # 2. incremental night: the last night's deliveries land
    for rel in new_files:
        _link(gen / "landing" / rel, night / "landing" / rel)
    m2, n2 = run_night(night, as_of, "incremental")
    after = deliveries(warehouse)

    chain = falls_01_chain(PROJECT_ROOT / "dbt_project")
    falls_dbt = sum(v["seconds"] for k, v in n1["dbt_nodes"].items() if k in chain)
    for n, m in ((n1, m1), (n2, m2)):
        measured_night(n, m)
    n1["deliveries"] = len(before)
    n1["rows_read"] = sum(r["rows_read"] or 0 for r in before.values())
    base.update(wall_seconds=mb.wall_seconds, peak_tree_gib=mb.peak_tree_gib, peak_process_gib=mb.peak_process_gib,
                mean_load=mb.mean_load)
    b_load = sum(e["load"] for e in base["extracts"].values())
    b_chk = sum(e["checks"] for e in base["extracts"].values())
    ingest = n1["stages"]["ingest + validate"]
    validation = sum(x.get(p, 0.0) for x in n1.get("ingest_seconds", {}).values() for p in VALIDATION_PHASES)
    r = {
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "preset": a.preset, "seed": a.seed,
        "replicate": a.replicate, "replicated_rows": replicated,
        "machine": machine(), "generated": gen_info, "full": n1, "incremental": n2, "baseline": base,
        "incremental_proof": incremental_proof(before, after, new_files),
        "counts": {"pipeline": counts_pipeline, "baseline": base["counts"]}, "falls_01_check": falls_check,
        "quarantine_check": quarantine_check,
        "ratios": {
            "validation_vs_raw_load": ratio(ingest, b_load),
            "contract_validation_seconds": validation,
            "contract_validation_vs_raw_load": ratio(validation, b_load),
            "ingest_vs_baseline_ingest": ratio(ingest, b_load + b_chk),
            "falls_01_dbt_seconds": falls_dbt,
            "falls_01_vs_baseline": ratio(falls_dbt, base["falls_01_seconds"]),
            "shared_stages": ratio(ingest + falls_dbt, b_load + b_chk + base["falls_01_seconds"]),
            "night_vs_baseline": ratio(n1["wall_seconds"], base["total_seconds"]),
        },
    }
    r["counts"]["baseline"] = {c: {k: v for k, v in d.items()} for c, d in base["counts"].items()}
    r["targets"] = evaluate(r)
    (bench / results_name(a.replicate)).write_text(json.dumps(r, indent=2, default=str))
    rc = report(r, a.no_docs, bench)
    # Contract validation of a 5M-row extract against a raw DuckDB load, in the same run.
    from benchmarks.validation import run_for_make_bench

    validation_rc = run_for_make_bench(bench)
    # Protection and the audit's attacker per protocol at county scale (figures in BENCH/disclosure.json).
    from benchmarks.disclosure import run_for_make_bench as disclosure_for_make_bench

    disclosure_rc = disclosure_for_make_bench(bench)
    # The same attacker on the night's real holding (every table, held nights, the geography): the
    # synthetic tables above do not have its blocks of thousands of unknowns.
    from benchmarks.attack_night import main as attack_night

    print("the audit's attacker on the night's real holdings …", flush=True)
    night_rc = attack_night([str(night), "--json", str(bench / "attack_night.json")])
    # The portal's pages on this night, in their own process (Django's settings are process-wide); run
    # whatever the targets above said, so a missed target never hides the portal's figures.
    portal_rc = subprocess.run([sys.executable, "-m", "benchmarks.portal", "--data-dir", str(night),
                                *shlex.split(a.portal_args)], cwd=PROJECT_ROOT).returncode
    return max(validation_rc, disclosure_rc, night_rc, portal_rc, rc)


def measured_night(night: dict, m: Measured) -> None:
    """A night's own figures with what the parent measured of its process, grouped into stages."""
    night.update(wall_seconds=m.wall_seconds, peak_tree_gib=m.peak_tree_gib, peak_process_gib=m.peak_process_gib,
                 returncode=m.returncode, mean_load=m.mean_load)
    night["stages"] = stages(night)


def failed_night(night: dict, m: Measured, out: Path) -> int:
    """A full night that failed (e.g. out of memory at a volume it cannot take) is a finding, not a
    crash of the benchmark: how far it got, stage by stage, and which steps failed."""
    measured_night(night, m)
    failed = sorted(k for k, v in night["steps"].items() if v.get("outcome") == "failure")
    night["failed_steps"] = failed
    print(f"the full night FAILED after {m.wall_seconds:.1f} s (peak {m.peak_tree_gib:.2f} GiB); failed steps: "
          f"{', '.join(failed) or 'see the log'}; log: {night['log']}", file=sys.stderr)
    for k, v in night["stages"].items():
        print(f"  {k:<48} {v:8.1f} s")
    out.write_text(json.dumps({"full": night, "failed": True}, indent=2, default=str))
    print(f"results: {out}")
    return 1


def report(r: dict, no_docs: bool, bench: Path) -> int:
    r["targets"] = evaluate(r)
    for night in (r["full"], r["incremental"]):
        night["stages"] = stages(night)  # as this version of the benchmark groups them (also for --render)
    copies = r.get("replicate", 1)
    args = ([f"--preset {r['preset']}"] if r["preset"] != "county" else []) + (
        [f"--replicate {copies}"] if copies != default_copies(r["preset"]) else [])
    command = "make bench" + (f" BENCH_ARGS='{' '.join(args)}'" if args else "")
    section = markdown(r, command)
    print("\n".join(line for line in section.splitlines() if not line.startswith("<!--")))
    if not no_docs:
        write_docs(section, figures_key(r))
        print(f"written: {DOCS}")
    print(f"results: {bench / results_name(r.get('replicate', 1))}")
    failed = not (r["full"]["success"] and r["incremental"]["success"])
    if failed:
        print(f"a night failed: see {r['full']['log']} and {r['incremental']['log']}", file=sys.stderr)
    return 1 if failed or not all(t["met"] for t in r["targets"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
