"""A benchmark night that fails is reported, not a crash of the benchmark.

At volumes beyond the presets (`--replicate N`) a night can fail (linkage ran out of memory at
25.6 million rows): the benchmark must still say how far it got and which step failed, and keep
the figures, instead of stopping on a missing mart in the comparisons that follow."""

from __future__ import annotations

import json

import pytest

from benchmarks.measure import Measured
from benchmarks.run import failed_night

pytestmark = pytest.mark.dbt_free


def test_a_failed_full_night_reports_its_stages_and_failed_step(tmp_path, capsys):
    steps = {
        "ops__deliveries": {"seconds": 4.0, "outcome": "success", "start": 100.0},
        "valid__riverside_acute__ae_attendances": {"seconds": 120.0, "outcome": "success", "start": 104.0},
        "linkage_person_index": {"seconds": 30.0, "outcome": "failure", "start": 224.0},
    }
    night = {"success": False, "steps": steps, "setup_seconds": 14.0, "log": "night.log"}
    out = tmp_path / "results-x16.json"
    rc = failed_night(night, Measured(1, 170.0, 2.0, 3.5, 1.5), out)
    assert rc == 1
    saved = json.loads(out.read_text())
    assert saved["failed"] is True and saved["full"]["failed_steps"] == ["linkage_person_index"]
    assert saved["full"]["stages"]["ingest + validate"] == 120.0 and saved["full"]["stages"]["linkage"] == 30.0
    err = capsys.readouterr().err
    assert "FAILED" in err and "linkage_person_index" in err


def test_the_benchmark_night_folder_is_one_a_night_accepts(tmp_path):
    """The benchmark lays out its data folder itself: under a shell's usual umask it must still be
    the warehouse account's alone, or the night refuses it before doing anything."""
    import os

    from benchmarks.run import fresh_data_dir
    from orchestration.partnership.warehouse.permissions import open_to_others

    gen = tmp_path / "gen"
    (gen / "landing" / "agency" / "extract").mkdir(parents=True)
    (gen / "landing" / "agency" / "extract" / "file_20250101.csv").write_text("a\n1\n")
    (gen / "reference").mkdir()
    old = os.umask(0o022)
    try:
        night = tmp_path / "night"
        fresh_data_dir(gen, night, set())
    finally:
        os.umask(old)
    assert (night / "landing" / "agency" / "extract" / "file_20250101.csv").exists()
    assert open_to_others(night) == []
