"""One generated demo landing area with the whole hostile corpus in it, ingested once with the
night's own domain functions (register, then every extract) on a real DuckDB file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.demo import generate
from orchestration.partnership.ingest.night import (
    check_key,
    process_extract,
    register_deliveries,
)
from orchestration.partnership.settings import Settings
from tests.conftest import DEMO_AS_OF, use_data_dir
from tests.hostile.corpus import Case, build_cases, place

IN_PROGRESS = "county_police/incidents/incidents_20261126_second.csv"


@dataclass
class Ingested:
    settings: Settings
    cases: dict[str, Case]
    demo_files: list[str]  # landing paths of the demo's own deliveries
    deliveries: dict[str, dict]  # landing path -> its ops.deliveries row
    outcomes: dict
    first_pass_ids: set[int]
    outside: Path

    def delivery(self, case: Case) -> dict:
        return self.deliveries[case.rel]

    def con(self):
        return duckdb.connect(str(self.settings.warehouse_path), read_only=True)


@pytest.fixture(scope="session")
def hostile(tmp_path_factory, saved_environment):
    data_dir = tmp_path_factory.mktemp("hostile")
    outside = tmp_path_factory.mktemp("outside-landing")
    settings = use_data_dir(data_dir)
    generate(data_dir, preset="small", seed=42, as_of=DEMO_AS_OF)
    demo_files = sorted(str(p.relative_to(settings.landing_dir)) for p in settings.landing_dir.rglob("*") if p.is_file())
    cases = {c.id: c for c in build_cases(settings.landing_dir, settings.truth_dir, outside)}
    for case in cases.values():
        place(case, settings.landing_dir, outside)
    contracts = load_contracts(settings.contracts_dir)
    first = set(register_deliveries(settings, contracts))
    # A delivery that arrives while the run is in progress: after registration, before processing.
    in_progress = settings.landing_dir / IN_PROGRESS
    src = settings.landing_dir / "county_police/incidents/incidents_20261126.csv"
    in_progress.write_bytes(src.read_bytes().replace(b"OCC20000180", b"OCC29999180"))
    os.utime(in_progress, (src.stat().st_atime, src.stat().st_mtime))
    partial = in_progress.with_name("incidents_20261126_third.csv.part")  # still being written
    partial.write_bytes(src.read_bytes()[:50])
    pads = check_key(settings)
    outcomes = {cid: process_extract(settings, c, pads) for cid, c in contracts.items()}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        cur = con.execute("select * from ops.deliveries")
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    return Ingested(settings, cases, demo_files, {r["landing_path"]: r for r in rows}, outcomes, first, outside)


def report_files(settings: Settings, agency: str) -> list[Path]:
    return sorted((settings.reports_dir / "contracts" / agency).glob("*"))


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
