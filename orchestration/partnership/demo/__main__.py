"""python -m orchestration.partnership.demo DATA_DIR [--preset small] [--seed 42] ..."""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

from orchestration.partnership.demo import PRESETS, generate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Generate the demo Riverside partnership data.")
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 11, 27))
    ap.add_argument("--violation-rate", type=float, default=0.02)
    ap.add_argument("--nightly-days", type=int, default=2)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    s = generate(a.data_dir, preset=a.preset, seed=a.seed, as_of=a.as_of, violation_rate=a.violation_rate,
                 nightly_days=a.nightly_days)
    print(json.dumps({"seconds": round(time.perf_counter() - t, 1), **s["counts"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
