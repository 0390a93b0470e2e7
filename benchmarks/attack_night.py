"""The audit's attacker on a real night's holding (not run by `make test`).

    .venv/bin/python -m benchmarks.attack_night DIR                      # every aggregate protocol
    .venv/bin/python -m benchmarks.attack_night DIR --protocols safeguarding-board --json OUT.json

DIR is a data folder after a night (the county night `make bench` ran: `BENCH/night-county-42`).
Per protocol, the latest published release is read from `DIR/releases/<protocol>/<date>/` and the
recipient's holding from the night's `ops.disclosure_ledger` (which also gives the counts behind
the release's figures), and the attacker runs on both together, as the audit's `holding.check` does (read-only: nothing is written to DIR). The
synthetic tables of `benchmarks.disclosure` have one table and no held nights; a real holding has
every table, every night held and the reference geography, which makes blocks of thousands of
unknowns: this measures those. Wall and CPU seconds, unknowns, blocks, programs and findings; then
the same attack again with the record of the blocks it found clean (`audit/verdicts.py`), as the
audit runs on a night whose blocks are all unchanged.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb
import polars as pl

ATTACK_TARGET_S = 60.0


def latest_release(data: Path, protocol_id: str) -> Path | None:
    folders = sorted(p for p in (data / "releases" / protocol_id).glob("*") if (p / "parquet").is_dir())
    return folders[-1] if folders else None


def measure(data: Path, protocol) -> dict | None:
    """The attacker on `protocol`'s recipient's holding with its latest release, timed."""
    from orchestration.partnership.releases import ledger
    from orchestration.partnership.releases.audit.attack import attack
    from orchestration.partnership.releases.audit.holding import release_figures

    folder = latest_release(data, protocol.id)
    if folder is None or not ledger.controlled_outputs(protocol):
        return None
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        held = ledger.holding(con, protocol.recipient_id)
        parents = dict(con.execute("select ward_code, district_code from reference.geography_wards").fetchall())
    # the counts behind the release's figures, as the engine hands them to the audit: the ledger's
    # latest for each cell (the release was published, so the ledger holds its state)
    latest = held.sort("seq").unique(["table_name", "cell", "figure"], keep="last", maintain_order=True)
    new = release_figures(folder, protocol, latest)
    mode = ((protocol.disclosure or {}).get("attacker") or {}).get("rounded_counts", "full_interval")
    holding = pl.concat([held.select(new.columns), new])
    c0, t0 = time.process_time(), time.perf_counter()
    result = attack(holding, protocol.margins, parents, mode, clean=set())
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    # again with the record of the blocks just found clean, as the audit on a night whose blocks are unchanged
    t1 = time.perf_counter()
    again = attack(holding, protocol.margins, parents, mode, clean=result.clean)
    return {"protocol": protocol.id, "release": folder.name, "holding_rows": held.height + new.height,
            "rounded_counts": mode, "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "unknowns": result.unknowns, "blocks": result.blocks, "programs": result.programs,
            "whole_points_near": result.nearby, "programs_at_limit": result.limited,
            "findings": len(result.findings), "met": wall <= ATTACK_TARGET_S,
            "again_wall_seconds": round(time.perf_counter() - t1, 2), "again_blocks_known": again.known}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="a data folder after a night")
    ap.add_argument("--protocols", nargs="*", help="protocol ids (default: every aggregate protocol)")
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args(argv)

    from orchestration.partnership.releases.protocols import load_protocols

    root = Path(__file__).resolve().parents[1]
    protocols = load_protocols(root / "contracts" / "protocols")
    ids = args.protocols or sorted(p for p, v in protocols.items() if v.level == "aggregate")
    results = []
    for pid in ids:
        r = measure(args.data, protocols[pid])
        if r is None:
            continue
        results.append(r)
        print(f"{r['protocol']:<22} release {r['release']}  holding {r['holding_rows']} rows  attacker "
              f"{r['wall_seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU ({r['unknowns']} unknowns, "
              f"{r['blocks']} blocks, {r['programs']} programs; {r['findings']} findings, rounded counts "
              f"{r['rounded_counts']})  target <= {ATTACK_TARGET_S:.0f} s: {'met' if r['met'] else 'missed'}; "
              f"again with the audit's record of clean blocks {r['again_wall_seconds']:.1f} s "
              f"({r['again_blocks_known']} blocks known)",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
