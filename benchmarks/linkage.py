"""Linkage at county or region scale: wall and CPU time, peak memory (not run by `make test`).

    .venv/bin/python -m orchestration.partnership.demo DIR --preset county   # or region (5 M residents)
    .venv/bin/python -m benchmarks.linkage DIR [--skip-night]

Runs the ingestion part of a night (register, validate, pseudonymise every extract) unless
--skip-night, then times `run_linkage` (training the model if DIR has none) in this process,
reporting wall and CPU time (the machine is shared: wall time depends on its load, which is
reported too), peak resident memory, and quality against the generator's truth (people and
households at quarter ends, docs/linkage.md). A second run
scores only profiles the first did not and links only records of deliveries it has not linked
(`--rescore` to score and link all). Targets: <= 5 minutes at county, <= 15 minutes at region,
and <= 8 GiB, on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--skip-night", action="store_true", help="the warehouse already holds the valid extracts")
    ap.add_argument("--retrain", action="store_true", help="train the Splink model again")
    ap.add_argument("--rescore", action="store_true", help="score every profile again (not only new ones)")
    args = ap.parse_args(argv)
    data_dir = args.data_dir.resolve()
    os.environ["PARTNERSHIP_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("PARTNERSHIP_PSEUDONYM_KEY", "benchmark-key-" + "0123456789abcdef" * 3)

    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.ingest.night import (
        check_key,
        process_extract,
        register_deliveries,
    )
    from orchestration.partnership.linkage import run_linkage
    from orchestration.partnership.linkage.quality import evaluate
    from orchestration.partnership.settings import get_settings

    settings = get_settings()
    contracts = load_contracts(settings.contracts_dir)
    if not args.skip_night:
        t = time.perf_counter()
        register_deliveries(settings, contracts)
        pads = check_key(settings)
        for c in contracts.values():
            process_extract(settings, c, pads)
        print(f"ingestion: {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    cpu = _cpu_seconds()
    summary = run_linkage(settings, contracts, retrain=args.retrain, rescore=args.rescore)
    seconds = time.perf_counter() - t
    cpu = _cpu_seconds() - cpu
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    result = {"records": summary.records, "profiles": summary.profiles, "persons": summary.persons,
              "clerical_review_pairs": summary.clerical_review_pairs,
              "linkage_seconds": round(seconds, 1), "linkage_cpu_seconds": round(cpu, 1),
              "load_average_1min": round(os.getloadavg()[0], 1), "peak_rss_gib": round(peak_gib, 2),
              "model_trained": summary.model_trained, "full_rescore": summary.full_rescore,
              "profiles_scored": summary.profiles_scored, "records_scored": summary.records_scored,
              "pairs_found_tonight": summary.pairs_found_tonight, "incremental": summary.incremental,
              "records_linked": summary.records_linked, "steps": summary.seconds,
              "steps_cpu": summary.cpu_seconds}
    if (settings.truth_dir / "records.parquet").exists():
        q = evaluate(settings)
        result["precision"], result["recall"] = q.overall.precision, q.overall.recall
        result["persons_true"] = q.persons_true
        if q.households:
            result["household_precision"] = q.households["precision"]
            result["household_recall"] = q.households["recall"]
        print(q.table())
    print(json.dumps(result, indent=2))
    return 0 if seconds <= TARGET_SECONDS.get(_preset(settings), 300) and peak_gib <= 8 else 1


TARGET_SECONDS = {"region": 900}


def _preset(settings) -> str | None:
    manifest = settings.truth_dir / "manifest.json"
    return json.loads(manifest.read_text())["preset"] if manifest.exists() else None


if __name__ == "__main__":
    raise SystemExit(main())
