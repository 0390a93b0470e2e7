"""Every kind of HTML page the product writes opens in headless Chromium with the network cut off,
needing nothing but local files; and a delivery's file name never becomes markup in any of them."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.ingest.night import process_extract, register_deliveries
from orchestration.partnership.settings import Settings
from orchestration.partnership.validation.datadocs import LOCAL_COPIES

pytestmark = pytest.mark.dbt_free

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "incidents_<img src=x onerror=alert(1)>_20261127.csv"
LOCAL = ("file:", "data:", "blob:", "about:", "http://127.0.0.1", "http://localhost")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from orchestration.partnership.boardpack.pdf import CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_offline(browser, path: Path) -> tuple[object, dict]:
    """The page loaded with every request that is not a local file refused; what it asked for,
    the errors it raised and the dialogs it opened."""
    page = browser.new_page()
    seen = {"requests": [], "blocked": [], "errors": [], "console": [], "dialogs": []}

    def route(r):
        if r.request.url.startswith(LOCAL):
            r.continue_()
        else:
            seen["blocked"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(200)  # scripts run on load (bootstrap-table fills its tables)
    return page, seen


def pages_of_each_kind(settings: Settings) -> dict[str, Path]:
    contracts = settings.reports_dir / "contracts"
    gx = settings.reports_dir / "gx" / "data_docs"
    return {
        "data owner's delivery report": next(p for p in contracts.rglob("*.html") if p.name != "index.html"),
        "data owner's delivery index": next(contracts.rglob("index.html")),
        "Data Docs index": gx / "index.html",
        "Data Docs validation result": next((gx / "validations").rglob("*.html")),
        "Data Docs expectation suite": next((gx / "expectations").rglob("*.html")),
        "dbt docs": settings.reports_dir / "dbt_docs" / "static_index.html",
        "board pack": next(settings.releases_dir.glob("*/*/board_pack.html")),
        "agreement register index": settings.reports_dir / "register" / "index.html",
        "agreement register page": next(p for p in (settings.reports_dir / "register").glob("*.html") if p.name != "index.html"),
    }


def test_every_kind_of_page_works_with_the_network_cut_off(demo_night, browser):
    settings, _ = demo_night
    for kind, path in pages_of_each_kind(settings).items():
        page, seen = open_offline(browser, path)
        try:
            assert seen["blocked"] == [], (kind, seen["blocked"])
            assert all(u.startswith(LOCAL) for u in seen["requests"]), (kind, seen["requests"])
            assert seen["errors"] == [], (kind, seen["errors"])
            # dbt's one-file docs ask for its own unbound template paths as local files (an Angular
            # quirk on file: pages): errors about local files, nothing from the network
            local_only = [m for m in seen["console"] if not (kind == "dbt docs" and (
                "Unsafe attempt to load URL file:" in m or "ERR_FILE_NOT_FOUND" in m))]
            assert local_only == [], (kind, local_only)
            assert page.locator("body").inner_text().strip(), kind
            if kind.startswith("Data Docs"):  # the vendored scripts and styles were found and ran
                assert page.evaluate("typeof jQuery === 'function' && typeof jQuery.fn.bootstrapTable === 'function'"), kind
                assert page.evaluate("getComputedStyle(document.body).fontFamily") != "", kind
                sheets = page.evaluate("[...document.styleSheets].map(s => s.href).filter(Boolean)")
                assert any(h.endswith("/vendor/bootstrap.min.css") for h in sheets), (kind, sheets)
        finally:
            page.close()


def test_no_data_docs_page_refers_to_a_cdn(demo_night):
    settings, _ = demo_night
    pages = list((settings.reports_dir / "gx" / "data_docs").rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text()
        assert not [u for u in LOCAL_COPIES if u in text], page


@pytest.fixture(scope="module")
def hostile_delivery(demo_night, tmp_path_factory):
    """The demo's ambulance file delivered again under a name carrying markup, into a folder of its own."""
    settings, _ = demo_night
    data = tmp_path_factory.mktemp("hostile-name")
    src = settings.landing_dir / "county_ambulance/incidents/incidents_20261126.csv"
    dest = data / "landing" / "county_ambulance" / "incidents" / HOSTILE
    dest.parent.mkdir(parents=True)
    dest.write_bytes(src.read_bytes())
    arrived = datetime(2026, 11, 27, 1, 30).timestamp()
    os.utime(dest, (arrived, arrived))
    here = Settings(data_dir=data)
    contracts = load_contracts(here.contracts_dir)
    register_deliveries(here, contracts)
    outcome = process_extract(here, contracts["county_ambulance__incidents"])
    assert outcome.accepted + outcome.rejected == 1
    return here


def test_a_file_name_carrying_markup_puts_no_tag_into_any_page(hostile_delivery, browser):
    reports = hostile_delivery.reports_dir
    validation_pages = list((reports / "gx" / "data_docs" / "validations").rglob("*.html"))
    assert validation_pages, "the delivery reached its batch suite: its Data Docs page exists"
    pages = list(reports.rglob("*.html"))
    for page in pages:
        assert not re.search(r"<img\s+src=x", page.read_text(), re.I), page
    report = next(p for p in (reports / "contracts").rglob("*.html") if p.name != "index.html")
    for path in [reports / "gx" / "data_docs" / "index.html", *validation_pages, report,
                 reports / "contracts" / "county_ambulance" / "index.html"]:
        page, seen = open_offline(browser, path)
        try:
            assert page.locator("img[src=x]").count() == 0, path
            assert seen["dialogs"] == [] and seen["blocked"] == [], (path, seen)
            if path == report:  # the data owner sees the name they sent, as text
                assert page.locator("h1").inner_text() == HOSTILE
        finally:
            page.close()
