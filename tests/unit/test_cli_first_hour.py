"""What a newcomer meets first at the command line: a night's progress by stage, the demo folder's
defaults, the analyst's help and errors, all readable at 80 columns."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from rich.console import Console

from orchestration.partnership.cli.night import ConsoleProgress
from orchestration.partnership.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.dbt_free


def _progress(live: bool) -> tuple[ConsoleProgress, io.StringIO]:
    out = io.StringIO()
    return ConsoleProgress(live=live, out=Console(file=out, width=80, force_terminal=live)), out


def test_without_a_terminal_a_night_prints_one_line_per_stage_with_its_elapsed_time_and_the_dbt_nodes_done():
    progress, out = _progress(live=False)
    with progress.night():
        progress.stage("registering deliveries")
        progress.stage("extract 1 of 12: county_council__children_social_care_referrals")
        progress.stage("dbt build (90 nodes)")
        for done in range(91):
            progress.advance(done, 90)
        progress.stage("release falls-board")
    lines = out.getvalue().splitlines()
    assert [line.split(None, 1)[1] for line in lines] == [
        "registering deliveries", "extract 1 of 12: county_council__children_social_care_referrals",
        "dbt build (90 nodes)", "dbt build (90 nodes): 90 of 90 nodes done", "release falls-board"]
    assert all(line.split()[0].count(":") == 1 for line in lines), "each line starts with the time since the night began"


def test_in_a_terminal_the_stages_stay_listed_with_the_dbt_nodes_done_of_total():
    progress, out = _progress(live=True)
    with progress.night():
        progress.stage("linkage")
        progress.stage("dbt build (90 nodes)")
        progress.advance(45, 90)
        progress.stage("board pack falls-board")
    text = out.getvalue()
    assert "linkage" in text and "dbt build (90 nodes): 45 of 90 nodes done" in text
    assert "board pack falls-board" in text and "night done in" in text


def test_a_quiet_night_prints_nothing():
    out = io.StringIO()
    progress = ConsoleProgress(quiet=True, out=Console(file=out))
    with progress.night():
        progress.stage("linkage")
        progress.advance(1, 2)
    assert out.getvalue() == ""


def test_a_demo_folder_supplies_its_key_and_its_data_s_last_day_unless_they_are_set(tmp_path, monkeypatch):
    from orchestration.partnership.demo.mode import apply_demo_defaults

    settings = Settings(data_dir=tmp_path)
    for name in ("PARTNERSHIP_PSEUDONYM_KEY", "PARTNERSHIP_PSEUDONYM_KEY_FILE", "PARTNERSHIP_RUN_DATE"):
        monkeypatch.delenv(name, raising=False)
    assert apply_demo_defaults(settings) == [], "a folder the demo did not make gets no default"
    (tmp_path / "demo_truth").mkdir()
    (tmp_path / "demo_truth" / "manifest.json").write_text(json.dumps({"as_of": "2026-11-27"}))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pseudonym.key").write_text("k" * 64)
    assert len(apply_demo_defaults(settings)) == 2
    import os

    assert os.environ["PARTNERSHIP_PSEUDONYM_KEY_FILE"] == str(tmp_path / "secrets" / "pseudonym.key")
    assert os.environ["PARTNERSHIP_RUN_DATE"] == "2026-11-27"
    monkeypatch.setenv("PARTNERSHIP_RUN_DATE", "2026-12-01")
    monkeypatch.setenv("PARTNERSHIP_PSEUDONYM_KEY", "x" * 40)
    monkeypatch.delenv("PARTNERSHIP_PSEUDONYM_KEY_FILE")
    assert apply_demo_defaults(settings) == [], "what the operator set wins"
    assert os.environ["PARTNERSHIP_RUN_DATE"] == "2026-12-01" and "PARTNERSHIP_PSEUDONYM_KEY_FILE" not in os.environ


def _partnership(*args: str, data_dir) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "80", "PARTNERSHIP_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "orchestration.partnership.cli", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_query_help_describes_its_arguments_and_an_unknown_protocol_lists_the_valid_ids(tmp_path):
    from orchestration.partnership import catalogue

    done = _partnership("query", "--help", data_dir=tmp_path)
    assert done.returncode == 0
    assert "the protocol id whose latest release is queried" in done.stdout and "one SQL statement" in done.stdout
    done = _partnership("query", "--protocol", "falls", "select 1", data_dir=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    said = " ".join(done.stderr.split())
    assert all(pid in said for pid in catalogue.protocols(PROJECT_ROOT / "contracts" / "protocols"))


def test_dev_has_a_port_option():
    from orchestration.partnership.cli.main import build_parser

    args = build_parser().parse_args(["dev", "--port", "3999"])
    assert (args.port, args.host) == (3999, "127.0.0.1")
