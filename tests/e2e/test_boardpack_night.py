"""The demo night's board pack: built by the night from the falls-board release, numbers equal to
the release's, data-quality facts equal to what the generator planted, and rebuilt by the CLI."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
import pytest

from orchestration.partnership.boardpack.build import HTML_FILE, PDF_FILE
from orchestration.partnership.boardpack.quality import WINDOW_DAYS
from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.releases.protocols import load_protocol
from tests.conftest import DEMO_RUN_DATE, use_data_dir

pytestmark = pytest.mark.dbt_free


def _release(settings):
    return settings.releases_dir / "falls-board" / DEMO_RUN_DATE.isoformat()


def test_the_night_builds_the_board_pack_into_the_release_folder(demo_night):
    settings, result = demo_night
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert any("board_packs" in s and "falls_board" in s.replace("-", "_") for s in steps), sorted(steps)
    folder = _release(settings)
    assert (folder / HTML_FILE).stat().st_size > 10_000 and (folder / PDF_FILE).read_bytes()[:5] == b"%PDF-"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["content_sha256"] in (folder / HTML_FILE).read_text()


def test_the_demo_pack_shows_the_release_numbers_and_suppressed_cells_as_suppressed(demo_night):
    settings, _ = demo_night
    from tests.integration.test_boardpack import _cells

    folder = _release(settings)
    values = pl.read_parquet(folder / "parquet" / "indicator_values.parquet")
    by_key = {(r["indicator_id"], r["geography_code"], r["period_type"], r["period_start"].isoformat(), r["breakdown"]): r
              for r in values.iter_rows(named=True)}
    cells = [(a, t) for a, t in _cells((folder / HTML_FILE).read_text()) if "data-field" in a and "data-indicator" in a]
    assert cells
    suppressed_seen = 0
    for a, text in cells:
        row = by_key[(a["data-indicator"], a["data-geo"], a["data-period-type"], a["data-period"], a["data-breakdown"])]
        f = a["data-field"]
        withheld = row[f"{f}_suppressed"] if f in ("numerator", "denominator") else row["derived_withheld"]
        if withheld:
            suppressed_seen += 1
            assert text.startswith("suppressed"), (a, text)
        elif row[f] is None:
            assert text.startswith("not calculated"), (a, text)
        else:
            assert text == (f"{row[f]:,d}" if f in ("numerator", "denominator") else f"{row[f]:,.1f}"), (a, text)
    assert suppressed_seen > 0, "the small demo has suppressed cells; the pack must show some"


def test_the_data_quality_panel_reports_the_late_delivery_the_generator_planted(demo_night):
    settings, _ = demo_night
    protocol = load_protocol(settings.protocols_dir / "falls-board.yaml")
    truth = pl.read_parquet(settings.truth_dir / "deliveries.parquet")
    start = DEMO_RUN_DATE - timedelta(days=WINDOW_DAYS - 1)
    planted = truth.filter(pl.col("planted_late") & pl.col("agency").is_in(protocol.doc["controllers"])
                           & (pl.col("planned_arrival").dt.date() >= start))
    expected_late: dict[str, int] = {}
    for r in planted.iter_rows(named=True):
        cid = f"{r['agency']}__{r['extract']}"
        expected_late[cid] = expected_late.get(cid, 0) + 1
    assert expected_late, "the generator plants one late delivery"
    dq = json.loads((_release(settings) / "data_quality.json").read_text())
    got_late = {e["contract"]: e["late"] for a in dq["agencies"] for e in a["extracts"] if e["late"]}
    assert got_late == expected_late

    # quarantine above tolerance, recomputed from the planted violations and each contract's tolerance
    records = pl.read_parquet(settings.truth_dir / "records.parquet")
    contracts = load_contracts(settings.contracts_dir)
    in_window = truth.filter(pl.col("agency").is_in(protocol.doc["controllers"]) & (pl.col("planned_arrival").dt.date() >= start)
                             & (pl.col("planned_arrival").dt.date() <= DEMO_RUN_DATE))
    per_file = (records.group_by("agency", "extract", "file_name")
                .agg(rows=pl.len(), bad=(pl.col("violations").list.len() > 0).sum()))
    over = {}
    for r in in_window.join(per_file, on=["agency", "extract", "file_name"]).iter_rows(named=True):
        cid = f"{r['agency']}__{r['extract']}"
        if r["rows"] and r["bad"] / r["rows"] > contracts[cid].quarantine_tolerance:
            over[cid] = over.get(cid, 0) + 1
    got_over = {e["contract"]: e["over_tolerance"] for a in dq["agencies"] for e in a["extracts"] if e["over_tolerance"]}
    assert got_over == over
    html = (_release(settings) / HTML_FILE).read_text()
    for cid in expected_late:
        name = contracts[cid].title.split(" — ")[0]
        assert f"{name.replace('&', '&amp;')}, " in html and "late" in html


def test_the_cli_rebuilds_the_pack_from_an_existing_release(demo_night):
    settings, _ = demo_night
    from orchestration.partnership.cli import main

    use_data_dir(settings.data_dir)  # the CLI reads the environment, which an earlier test may have pointed elsewhere
    folder = _release(settings)
    before = (folder / PDF_FILE).stat().st_mtime_ns
    assert main(["board-pack", "--protocol", "falls-board", "--date", DEMO_RUN_DATE.isoformat()]) == 0
    assert (folder / PDF_FILE).stat().st_mtime_ns > before, "--protocol rebuilds the PDF"
    assert main(["board-pack", "--protocol", "falls-board", "--date", "2001-01-01"]) == 2
    assert main(["board-pack", "--protocol", "no-such-protocol"]) == 2
