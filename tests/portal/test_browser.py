"""Each role's main journey in headless Chromium against the portal served on loopback (Django's
live server), with screenshots kept in test-artefacts/portal/ (git-ignored). The pages must work
under the Content-Security-Policy: a refused script or style is a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.portal.conftest import PASSWORD, release_date

pytestmark = [pytest.mark.dbt_free, pytest.mark.django_db(transaction=True)]

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "portal"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, which Django's ORM guard takes for
    # async code; the tests' database work is synchronous all the same.
    with pytest.MonkeyPatch.context() as mp, sync_playwright() as p:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server, accounts, settings, monkeypatch):
    """A fresh browser context; cookies as the loopback dev server sends them (plain HTTP)."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.SESSION_COOKIE_NAME = "portal_session"
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    pg = context.new_page()
    pg.csp_errors = []
    pg.on("console", lambda m: pg.csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    yield pg
    assert not pg.csp_errors, pg.csp_errors
    context.close()


def sign_in(page, username: str) -> None:
    page.goto("/sign-in/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def shot(page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def test_a_data_owner_opens_a_failed_delivery_and_acknowledges_it_in_place(page, portal_environment):
    sign_in(page, "owner_acute")
    page.click("text=Deliveries: riverside_acute")
    shot(page, "owner_deliveries")
    row = page.locator("tbody tr", has=page.locator("td:last-child", has_text="1 of 1")).first
    row.locator("a").first.click()
    form = page.locator("tr.failure form").first
    form.locator("input[name=comment]").fill("Sent again with the codes corrected")
    url = page.url
    form.locator("button").click()
    page.locator("tr.failure", has_text="Sent again with the codes corrected").wait_for()
    assert page.url == url  # htmx swapped the row; the page stayed
    assert "acknowledged" in page.locator("tr.failure").first.inner_text()
    shot(page, "owner_acknowledged")


def test_an_analyst_reads_a_release_its_model_docs_and_downloads_its_csv(page, portal_environment):
    sign_in(page, "analyst_falls")
    page.click("text=Releases: falls-analysts")
    page.click(f"text={release_date(portal_environment, 'falls-analysts')}")
    assert page.locator("h2", has_text="Lineage").is_visible()
    shot(page, "analyst_release")
    with page.expect_download() as download:
        page.click("text=CSV")
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("person_ref,") and len(lines) > 1
    page.click("text=columns and lineage")
    assert page.locator("code", has_text="marts.fct_falls_pathway_events").count() >= 1
    shot(page, "analyst_model")


def test_a_board_member_opens_the_latest_pack(page, portal_environment):
    sign_in(page, "board_falls")
    page.click("text=Board packs: falls-board")
    shot(page, "board_packs")
    page.click("text=Read the pack")
    page.wait_for_load_state()
    assert "board_pack" not in page.title() and page.locator("body").inner_text().strip()
    shot(page, "board_pack")


def test_an_ig_lead_checks_the_release_log_and_filters_the_access_log(page, portal_environment):
    sign_in(page, "ig")
    page.click("text=Release log")
    assert "The hash chain verifies" in page.locator("main").inner_text()
    shot(page, "ig_release_log")
    page.click("text=Access log")
    page.fill("input[name=user]", "ig")
    page.click("text=Show")
    page.wait_for_url("**user=ig**")
    assert "/ig/" in page.locator("#access-table").inner_text()
    with page.expect_download() as download:
        page.click("text=Export as CSV")
    assert Path(download.value.path()).read_text().startswith("at,username,")
    page.click("text=Opt-outs and consent")
    assert "national data opt-out" in page.locator("main").inner_text()
    shot(page, "ig_exclusions")


def test_an_operator_sees_the_night_and_the_way_to_the_dagster_ui(page, portal_environment):
    sign_in(page, "operator")
    page.click("text=Night status")
    main = page.locator("main").inner_text()
    assert "falls-board" in main and "published" in main
    assert page.locator("a", has_text="the Dagster UI").get_attribute("href").startswith("http://127.0.0.1:3000")
    shot(page, "operator")
    page.click("text=Sign out")
    page.wait_for_url("**/sign-in/")
    page.goto("/operator/")
    assert "/sign-in/" in page.url
