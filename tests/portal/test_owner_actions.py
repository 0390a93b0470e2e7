"""A data owner's two actions: acknowledging a rule failure with a comment (htmx swaps only that
failure's row), and uploading a corrected file, placed in the landing folder only if the contract
engine accepts it, never over another file."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import duckdb
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.portal.conftest import body, ops_rows

pytestmark = [pytest.mark.dbt_free, pytest.mark.django_db]
CONTRACT = "riverside_acute__emergency_admissions"


def _failed_delivery(settings) -> tuple[int, list[str]]:
    from orchestration.portal.policies import failed_rules

    for did, status, code, counts in ops_rows(settings, "select delivery_id, status, reason_code, rule_counts from deliveries "
                                              "where agency = 'riverside_acute' order by delivery_id"):
        rules = failed_rules({"status": status, "reason_code": code, "rule_counts": json.loads(counts or "{}")})
        if rules:
            return did, rules
    raise AssertionError("the demo night has a failed riverside_acute delivery")


def test_acknowledging_a_failure_with_htmx_returns_only_its_row_and_closes_it(signed_in, portal_environment):
    did, rules = _failed_delivery(portal_environment)
    client = signed_in("owner_acute")
    url = f"/owner/riverside_acute/deliveries/{did}/acknowledge/"
    response = client.post(url, {"rule": rules[0], "comment": "Resent with the codes fixed"}, HTTP_HX_REQUEST="true")
    html = body(response).decode()
    assert response.status_code == 200 and html.lstrip().startswith("<tr") and "<html" not in html
    assert "Resent with the codes fixed" in html and "acknowledged" in html and "<form" not in html
    assert client.post(url, {"rule": rules[0], "comment": "again"}).status_code == 404  # no longer open
    page = body(client.get(f"/owner/riverside_acute/deliveries/{did}/")).decode()
    assert "Resent with the codes fixed" in page and "owner_acute" in page


def test_an_acknowledgement_needs_a_comment_and_a_rule_the_delivery_failed(signed_in, portal_environment):
    did, rules = _failed_delivery(portal_environment)
    client = signed_in("owner_acute")
    url = f"/owner/riverside_acute/deliveries/{did}/acknowledge/"
    response = client.post(url, {"rule": rules[0], "comment": "  "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and b"Say what was done" in body(response)
    assert client.post(url, {"rule": "no_such_rule:allowed_values", "comment": "x"}).status_code == 404
    from orchestration.portal.models import Acknowledgement

    assert not Acknowledgement.objects.exists()


def _corrected_file(night_settings, name: str) -> SimpleUploadedFile:
    """The demo's own delivery, with a different first row: new bytes of a valid file."""
    original = (night_settings.landing_dir / "riverside_acute" / "emergency_admissions" /
                "emergency_admissions_20261126.csv").read_text()
    header, *rows = original.splitlines()
    rows = rows[1:] + rows[:1]  # the same rows, in another order: a file that was never delivered
    return SimpleUploadedFile(name, ("\n".join([header, *rows]) + "\n").encode())


def test_a_corrected_file_the_contract_accepts_is_placed_once_and_never_overwritten(signed_in, portal_data, portal_environment):
    today = datetime.now(timezone.utc).strftime("%Y%m%d")
    name = f"emergency_admissions_{today}.csv"
    client = signed_in("owner_acute")
    upload = _corrected_file(portal_data.night, name)
    response = client.post("/owner/riverside_acute/upload/", {"contract": CONTRACT, "file": upload})
    page = body(response).decode()
    landed = portal_environment.landing_dir / "riverside_acute" / "emergency_admissions" / name
    assert response.status_code == 200 and "placed" in page, page[-3000:]
    assert landed.read_bytes() == _corrected_file(portal_data.night, name).read()
    again = SimpleUploadedFile(name, b"episode_id\nother bytes\n")
    page = body(client.post("/owner/riverside_acute/upload/", {"contract": CONTRACT, "file": again})).decode()
    assert "already in the landing folder" in page or "refused" in page
    assert landed.read_bytes() == _corrected_file(portal_data.night, name).read()

    from orchestration.portal.models import Upload
    from orchestration.portal.uploads import refresh_statuses

    placed = Upload.objects.get(status="placed")
    assert list(Upload.objects.values_list("status", flat=True)) == ["refused", "placed"]
    refresh_statuses([placed], {placed.sha256: 9999})  # the night registered the same bytes
    assert Upload.objects.get(pk=placed.pk).status == "registered"
    landed.unlink()


def test_a_file_the_contract_rejects_is_not_placed_and_its_rules_are_shown(signed_in, portal_environment):
    name = f"emergency_admissions_{datetime.now(timezone.utc):%Y%m%d}_bad.csv"
    bad = SimpleUploadedFile(name, b"episode_id|wrong_column\nEP1|x\n")
    page = body(signed_in("owner_acute").post("/owner/riverside_acute/upload/", {"contract": CONTRACT, "file": bad})).decode()
    assert "refused" in page and '<table class="rules">' in page
    assert not (portal_environment.landing_dir / "riverside_acute" / "emergency_admissions" / name).exists()


def test_a_file_whose_name_the_night_would_not_register_is_refused_before_the_check(signed_in, portal_environment):
    page = body(signed_in("owner_acute").post("/owner/riverside_acute/upload/", {
        "contract": CONTRACT, "file": SimpleUploadedFile("admissions.csv", b"a\n1\n")})).decode()
    assert "does not match the contract" in page and "rows read" not in page


def test_a_delivery_the_night_registered_shows_among_the_deliveries(signed_in, private_data):
    """The snapshot is what the portal shows: a delivery recorded by the night appears at once."""
    con = duckdb.connect(str(private_data.data_dir / "portal" / "ops_snapshot.duckdb"))
    try:
        con.execute("""insert into deliveries (delivery_id, contract_id, agency, extract, file_name, landing_path, sha256,
                       size_bytes, arrived_at, registered_at, status) values (987654, ?, 'riverside_acute',
                       'emergency_admissions', 'emergency_admissions_corrected.csv', 'x', 'abc', 1, now(), now(),
                       'registered')""", [CONTRACT])
    finally:
        con.close()
    page = body(signed_in("owner_acute").get("/owner/riverside_acute/")).decode()
    assert "emergency_admissions_corrected.csv" in page and "987654" in page
