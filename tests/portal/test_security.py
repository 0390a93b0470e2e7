"""Sign-in and the attacker's requests: CSRF on every form, lockout after failed sign-ins, the
session ended after inactivity, no way out of a release folder, secure cookies and headers."""

from __future__ import annotations

import os
import time

import pytest
from django.test import Client

from tests.portal.conftest import PASSWORD, body, ops_rows, release_date

pytestmark = [pytest.mark.dbt_free, pytest.mark.django_db]


def _failed(settings, agency: str) -> tuple[int, str]:
    from orchestration.portal.policies import failed_rules

    cols = ["delivery_id", "status", "reason_code", "rule_counts"]
    for row in ops_rows(settings, f"select {', '.join(cols)} from deliveries where agency = ? order by delivery_id", [agency]):
        import json

        d = dict(zip(cols, row)) | {"rule_counts": json.loads(row[3] or "{}")}
        if failed_rules(d):
            return d["delivery_id"], failed_rules(d)[0]
    raise AssertionError(f"no failed delivery from {agency}")


def test_every_form_refuses_a_post_without_its_csrf_token(accounts, portal_environment):
    delivery, rule = _failed(portal_environment, "riverside_acute")
    client = Client(enforce_csrf_checks=True)
    assert client.post("/sign-in/", {"username": "owner_acute", "password": PASSWORD}).status_code == 403
    client.force_login(accounts["owner_acute"], backend="django.contrib.auth.backends.ModelBackend")
    for url, data in ((f"/owner/riverside_acute/deliveries/{delivery}/acknowledge/", {"rule": rule, "comment": "x"}),
                      ("/owner/riverside_acute/upload/", {"contract": "riverside_acute__emergency_admissions"}),
                      ("/sign-out/", {})):
        assert client.post(url, data).status_code == 403, url
    from orchestration.portal.models import Acknowledgement

    assert not Acknowledgement.objects.exists()
    page = body(client.get(f"/owner/riverside_acute/deliveries/{delivery}/")).decode()
    assert page.count('name="csrfmiddlewaretoken"') >= 2  # the acknowledgement form and sign-out


def test_an_account_is_locked_after_five_failed_sign_ins_even_with_the_right_password(accounts):
    client = Client()
    for _ in range(5):
        assert client.post("/sign-in/", {"username": "ig", "password": "wrong password"}).status_code in (200, 429)
    locked = client.post("/sign-in/", {"username": "ig", "password": PASSWORD})
    assert locked.status_code == 429 and b"Too many failed sign-ins" in locked.content
    assert client.get("/ig/").status_code == 302
    other = Client()  # another account from the same place still signs in? No: the address is locked too
    assert other.post("/sign-in/", {"username": "operator", "password": PASSWORD}).status_code == 429


def test_a_correct_sign_in_starts_a_session_with_secure_http_only_cookies(accounts, settings):
    response = Client().post("/sign-in/", {"username": "operator", "password": PASSWORD})
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert settings.SESSION_COOKIE_NAME.startswith("__Host-") and settings.CSRF_COOKIE_SECURE


def test_passwords_are_stored_as_argon2_hashes(accounts):
    assert accounts["ig"].password.startswith("argon2$argon2id$")


def test_a_session_ends_after_the_idle_time_and_each_request_renews_it(accounts, settings):
    from django.contrib.sessions.models import Session

    settings.SESSION_COOKIE_AGE = 2
    client = Client()
    assert client.post("/sign-in/", {"username": "operator", "password": PASSWORD}).status_code == 302
    first = Session.objects.get().expire_date
    time.sleep(1.1)
    assert client.get("/operator/").status_code == 200
    assert Session.objects.get().expire_date > first  # activity moved the end
    time.sleep(2.2)
    response = client.get("/operator/")
    assert response.status_code == 302 and response["Location"].startswith("/sign-in/")


def test_no_download_address_leaves_the_release_folder(signed_in, portal_environment):
    settings = portal_environment
    date = release_date(settings, "falls-analysts")
    base = f"/analyst/falls-analysts/{date}"
    client = signed_in("analyst_falls")
    for tail in ("files/../../falls-board/{d}/manifest.json", "files/..%2f..%2ffalls-board/{d}/manifest.json",
                 "files/%2e%2e/%2e%2e/supporting-families/{d}/manifest.json", "files/parquet/../../../../portal/ops_snapshot.duckdb",
                 "files//etc/passwd", "files/%2fetc%2fpasswd", "files/parquet/..%5c..%5cmanifest.json",
                 "csv/..%2f..%2fsupporting-families.csv", "models/..%2fx/"):
        url = f"{base}/{tail.format(d=release_date(settings, 'falls-board'))}"
        assert client.get(url).status_code == 404, url
    assert client.get(f"/analyst/falls-analysts/..%2fsupporting-families/").status_code == 404
    board = signed_in("board_falls")
    assert board.get(f"/board/falls-board/{release_date(settings, 'falls-board')}/pack.json").status_code == 404
    assert board.get(f"/board/falls-board/..%2f..%2fportal/pack.html").status_code == 404
    ig = signed_in("ig")
    assert ig.get("/ig/register/../../portal/secret_key").status_code == 404


def test_a_link_planted_in_a_release_folder_leads_nowhere(signed_in, portal_environment):
    settings = portal_environment
    date = release_date(settings, "supporting-families")
    folder = settings.releases_dir / "supporting-families" / date
    target = folder / "data_dictionary.md"
    saved = target.read_bytes()
    target.unlink()
    os.symlink(settings.data_dir / "portal" / "ops_snapshot.duckdb", target)
    try:
        client = signed_in("analyst_families")
        assert client.get(f"/analyst/supporting-families/{date}/files/data_dictionary.md").status_code == 404
    finally:
        target.unlink()
        target.write_bytes(saved)


def test_pages_forbid_inline_script_and_framing_and_documents_run_nothing(signed_in, portal_environment):
    page = signed_in("board_falls").get("/board/falls-board/")
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert b"<script>" not in page.content and b"/static/django_htmx/htmx-2.min.js" in page.content
    pack = signed_in("board_falls").get(f"/board/falls-board/{release_date(portal_environment, 'falls-board')}/pack.html")
    assert "sandbox" in pack["Content-Security-Policy"] and "script-src" not in pack["Content-Security-Policy"]
