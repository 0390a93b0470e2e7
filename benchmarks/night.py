"""One night of the nightly job, timed from its own Dagster event log (run by benchmarks.run in a child process).

    .venv/bin/python -m benchmarks.night DATA_DIR RUN_DATE OUT.json

Runs the night exactly as `partnership run` does (`run_night`: dbt parse, load the definitions,
execute the `nightly` job in process on the data folder's Dagster instance), then reads the
run's event log on the instance: the start and end of every step. dbt's own per-model times
come from the run_results.json of the night's `dbt build`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date
from pathlib import Path


def step_times(instance, run_id: str) -> dict[str, dict]:
    """Each step's wall time (seconds) and outcome, from STEP_START to STEP_SUCCESS/FAILURE/SKIPPED."""
    steps: dict[str, dict] = {}
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None or not ev.step_key:
            continue
        s = steps.setdefault(ev.step_key, {})
        kind = ev.event_type_value
        if kind == "STEP_START":
            s["start"] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            s["end"] = entry.timestamp
            s["outcome"] = kind.removeprefix("STEP_").lower()
    return {k: {"seconds": v["end"] - v["start"], "outcome": v["outcome"], "start": v["start"]}
            for k, v in steps.items() if "start" in v and "end" in v}


def linkage_seconds(instance, run_id: str) -> dict[str, float]:
    """The linkage asset's own per-step seconds, from its materialization metadata."""
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is not None and ev.event_type_value == "ASSET_MATERIALIZATION":
            mat = ev.event_specific_data.materialization
            if mat.asset_key.path == ["linkage", "person_records"] and "seconds" in mat.metadata:
                return dict(mat.metadata["seconds"].data)
    return {}


def ingest_seconds(instance, run_id: str) -> dict[str, dict[str, float]]:
    """Each extract's ingest step, per phase (archive, validate, write, ...), from its materialization metadata."""
    out = {}
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is not None and ev.event_type_value == "ASSET_MATERIALIZATION":
            mat = ev.event_specific_data.materialization
            if mat.asset_key.path[0] == "valid" and "seconds" in mat.metadata:
                out[mat.asset_key.path[-1]] = dict(mat.metadata["seconds"].data)
    return out


def dbt_node_times(project_dir: Path, since: float) -> dict[str, dict]:
    """Per-node execution time of the night's `dbt build` (the newest build run_results.json written since)."""
    best = None
    for p in (project_dir / "target").rglob("run_results.json"):
        if p.stat().st_mtime < since:
            continue
        doc = json.loads(p.read_text())
        if (doc.get("args") or {}).get("which") != "build":
            continue
        if best is None or p.stat().st_mtime > best[0]:
            best = (p.stat().st_mtime, doc)
    if best is None:
        return {}
    return {r["unique_id"]: {"seconds": r["execution_time"], "status": r["status"]} for r in best[1]["results"]}


def main(argv: list[str] | None = None) -> int:
    started = time.time()  # before dagster and the product are imported (the night's clock starts after)
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("run_date", type=date.fromisoformat)
    ap.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    os.environ["PARTNERSHIP_DATA_DIR"] = str(a.data_dir)
    os.environ["DAGSTER_HOME"] = str(a.data_dir / "dagster_home")
    os.environ["PARTNERSHIP_RUN_DATE"] = a.run_date.isoformat()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    import dagster as dg

    from orchestration.partnership.cli import run_night
    from orchestration.partnership.settings import get_settings

    settings = get_settings()
    t0 = time.time()
    result = run_night(settings, quiet=True)
    t1 = time.time()
    steps = step_times(dg.DagsterInstance.get(), result.run_id)
    first = min((s["start"] for s in steps.values()), default=t1)
    out = {
        "success": result.success, "run_id": result.run_id, "wall_seconds": t1 - t0,
        "setup_seconds": first - t0,  # dbt parse and loading the Dagster definitions, before the first step
        # Importing dagster and the product's CLI, before the clock: `partnership run` pays it too.
        "import_seconds": t0 - started,
        "steps": steps, "linkage_seconds": linkage_seconds(dg.DagsterInstance.get(), result.run_id),
        "ingest_seconds": ingest_seconds(dg.DagsterInstance.get(), result.run_id),
        "dbt_nodes": dbt_node_times(settings.dbt_project_dir, t0), "log": str(result.log_path),
    }
    a.out.write_text(json.dumps(out, indent=2))
    return 0 if result.success else 1


if __name__ == "__main__":
    from orchestration.partnership.cli import exit_now

    exit_now(main())  # as `partnership run` ends
