"""The Dagster UI, in a real browser: `dagster dev` (webserver and daemon, from workspace.yaml) on a
copy of the session's demo night; headless Chromium (Debian's, through Playwright) sees the
ingestion, dbt and release assets in the asset graph, launches the nightly job, and sees it succeed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import DEMO_RUN_DATE, TEST_KEY

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query: str) -> dict:
    req = urllib.request.Request(f"{url}/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["data"]


@pytest.fixture(scope="module")
def dagster_ui(demo_night, tmp_path_factory):
    reference, _ = demo_night
    data_dir = tmp_path_factory.mktemp("ui") / "data"
    shutil.copytree(reference.data_dir, data_dir, symlinks=True)  # run history included: it persists
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARTNERSHIP_", "DAGSTER_"))}
    # As documented: the data folder and DAGSTER_HOME; the warehouse's path follows from the folder.
    env.update({"PATH": os.pathsep.join([str(bin_dir), env.get("PATH", "")]), "PARTNERSHIP_DATA_DIR": str(data_dir),
                "DAGSTER_HOME": str(data_dir / "dagster_home"),
                "PARTNERSHIP_PSEUDONYM_KEY": TEST_KEY, "PARTNERSHIP_RUN_DATE": DEMO_RUN_DATE.isoformat(),
                "GX_ANALYTICS_ENABLED": "false"})
    port = _free_port()
    log = open(data_dir.parent / "dagster-dev.log", "w")
    proc = subprocess.Popen([str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                data = _graphql(url, '{ workspaceOrError { ... on Workspace { locationEntries { name '
                                     'locationOrLoadError { __typename } } } } }')
                entries = data["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["locationOrLoadError"] and \
                        entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                    started = (data_dir.parent / "dagster-dev.log").read_text()
                    assert "Traceback" not in started, f"dagster dev printed a traceback starting:\n{started[-3000:]}"
                    break
                if entries and entries[0]["locationOrLoadError"] and \
                        entries[0]["locationOrLoadError"]["__typename"] == "PythonError":
                    pytest.fail(f"the code location failed to load:\n{(data_dir.parent / 'dagster-dev.log').read_text()[-3000:]}")
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dagster dev did not come up:\n{(data_dir.parent / 'dagster-dev.log').read_text()[-3000:]}")
            time.sleep(2)
        yield url, data_dir
    finally:
        # Ctrl-C is how dagster dev is stopped: it shuts its webserver and daemon down at once,
        # where SIGTERM left it waiting out the whole minute.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _skip_welcome(page) -> None:
    """A fresh instance greets with a newsletter dialog; it covers the page until dismissed."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=5000)
        skip.click()
    except Exception:  # noqa: BLE001 - no dialog: nothing to dismiss
        pass


def test_the_asset_graph_shows_the_ingestion_dbt_and_release_assets(dagster_ui, browser):
    url, _ = dagster_ui
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    # Ingestion, dbt (the marts group: the staging group has too many models for labels to be
    # drawn at the zoom the page opens with) and release assets.
    for group, asset in (("ingestion", "deliveries"), ("marts", "fct_indicator_values"), ("releases", "falls-board")):
        page.goto(f"{url}/locations/partnership/asset-groups/{group}", wait_until="domcontentloaded")
        _skip_welcome(page)
        page.locator("foreignObject").get_by_text(asset, exact=True).first.wait_for(timeout=120_000)
    page.close()


def test_the_nightly_job_launched_from_the_ui_succeeds(dagster_ui, browser):
    url, data_dir = dagster_ui
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{url}/locations/partnership/jobs/nightly", wait_until="domcontentloaded")
    _skip_welcome(page)
    page.get_by_role("button", name="Materialize all").click(timeout=120_000)

    run_id = None
    deadline = time.monotonic() + 120
    while run_id is None and time.monotonic() < deadline:
        runs = _graphql(url, '{ runsOrError(filter: {tags: [{key: "dagster/from_ui", value: "true"}]}) '
                             '{ ... on Runs { results { runId jobName } } } }')["runsOrError"]["results"]
        run_id = next((r["runId"] for r in runs if r["jobName"] == "nightly"), None)
        time.sleep(1)
    assert run_id, "no nightly run was launched from the UI"

    page.goto(f"{url}/runs/{run_id}", wait_until="domcontentloaded")
    _skip_welcome(page)
    deadline = time.monotonic() + 1800
    status = None
    while time.monotonic() < deadline:
        status = _graphql(url, f'{{ runOrError(runId: "{run_id}") {{ ... on Run {{ status }} }} }}')["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(5)
    assert status == "SUCCESS", (data_dir.parent / "dagster-dev.log").read_text()[-4000:]
    page.reload(wait_until="domcontentloaded")
    page.get_by_text("Success", exact=True).first.wait_for(timeout=120_000)  # what the operator sees
    page.close()
