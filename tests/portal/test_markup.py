"""Markup in anything that came from a delivery (file names, column names, values, rule names,
reasons) is shown as text on every page that shows it, never run: a hostile agency file reaches
the portal through the night's records and through the upload page."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import duckdb
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.portal.conftest import body

pytestmark = [pytest.mark.dbt_free, pytest.mark.django_db]

FILE = '<script>alert("file")</script>.csv'
COLUMN = '<svg onload=alert("column")>'
VALUE = '<img src=x onerror=alert("value")>'
RULE = f'{COLUMN}:allowed_values'
REASON = f'unexpected column "{COLUMN}"'
MARKUP = (FILE, COLUMN, VALUE, "<script>", "<svg onload", "<img src=x")


@pytest.fixture
def hostile(private_data):
    """The night's records of two hostile deliveries of riverside_acute (one accepted with a
    quarantined row, one rejected), in a private copy of the snapshot and reports."""
    from orchestration.partnership.ingest.reports import report_stem

    data = private_data.data_dir
    con = duckdb.connect(str(data / "portal" / "ops_snapshot.duckdb"))
    try:
        for did, status, code, reason, counts in ((9001, "accepted", None, None, {RULE: 1}),
                                                  (9002, "rejected", "unexpected_columns", REASON, {})):
            con.execute("""insert into deliveries (delivery_id, contract_id, agency, extract, file_name, landing_path,
                           sha256, size_bytes, arrived_at, registered_at, status, reason_code, reason, rows_read,
                           rows_valid, rows_quarantined, rule_counts, warnings) values (?, 'riverside_acute__emergency_admissions',
                           'riverside_acute', 'emergency_admissions', ?, 'x', 'f', 1, now(), now(), ?, ?, ?, 1, 0, 1, ?, ?)""",
                        [did, FILE, status, code, reason, json.dumps(counts), json.dumps([f"late: {VALUE}"])])
            report = {"agency": "riverside_acute", "file_name": FILE, "status": status, "reason": reason,
                      "rules": [{"rule": RULE, "level": "row", "passed": False, "severity": "error", "failing_rows": 1,
                                 "observed": f"columns {COLUMN}", "expected": VALUE,
                                 "examples": [{"row": 1, "values": {COLUMN: VALUE}}]}]}
            (data / "reports" / "contracts" / "riverside_acute" / f"{report_stem(did, FILE)}.json").write_text(json.dumps(report))
        con.execute("insert into standing_rejections values ('riverside_acute__emergency_admissions', ?)", [f"{FILE}: {REASON}"])
    finally:
        con.close()
    return data


def _no_raw_markup(html: str) -> None:
    for raw in MARKUP:
        assert raw not in html, f"{raw!r} reached the page unescaped"


def _shown_as_text(html: str) -> None:
    _no_raw_markup(html)
    assert "&lt;script&gt;" in html or "&lt;svg" in html or "&lt;img" in html


def test_markup_from_the_nights_records_is_shown_as_text_on_every_page_that_shows_them(signed_in, hostile):
    client = signed_in("owner_acute")
    agency = body(client.get("/owner/riverside_acute/")).decode()
    _shown_as_text(agency)
    assert "&lt;script&gt;alert(&quot;file&quot;)&lt;/script&gt;.csv" in agency
    for did in (9001, 9002):
        page = body(client.get(f"/owner/riverside_acute/deliveries/{did}/")).decode()
        _shown_as_text(page)
        assert "&lt;img src=x onerror=alert(&quot;value&quot;)&gt;" in page
    _shown_as_text(body(signed_in("operator").get("/operator/")).decode())
    row = body(client.post("/owner/riverside_acute/deliveries/9001/acknowledge/",
                           {"rule": RULE, "comment": f"fixed {VALUE}"}, HTTP_HX_REQUEST="true")).decode()
    _shown_as_text(row)


def test_markup_in_an_uploaded_files_name_columns_and_values_is_shown_as_text(signed_in, portal_data, hostile):
    client = signed_in("owner_acute")
    today = datetime.now(timezone.utc).strftime("%Y%m%d")
    named = client.post("/owner/riverside_acute/upload/", {
        "contract": "riverside_acute__emergency_admissions",
        "file": SimpleUploadedFile('emergency_admissions_<img src=x onerror=alert("name")>.csv', b"a\n1\n")})
    _shown_as_text(body(named).decode())
    original = (portal_data.night.landing_dir / "riverside_acute" / "emergency_admissions" /
                "emergency_admissions_20261126.csv").read_text().splitlines()
    with_column = [original[0] + "|" + COLUMN, *(line + "|x" for line in original[1:])]
    width = len(original[0].split("|"))
    rows = [r for r in (line.split("|") for line in original[1:]) if len(r) == width]
    method = original[0].split("|").index("admission_method")
    for row in rows:
        row[method] = VALUE
    with_value = [original[0], *("|".join(row) for row in rows)]
    for suffix, lines in (("column", with_column), ("value", with_value)):
        response = client.post("/owner/riverside_acute/upload/", {
            "contract": "riverside_acute__emergency_admissions",
            "file": SimpleUploadedFile(f"emergency_admissions_{today}_{suffix}.csv", "\n".join(lines).encode())})
        page = body(response).decode()
        _shown_as_text(page)
        assert ("&lt;svg onload=alert(&quot;column&quot;)&gt;" if suffix == "column" else
                "&lt;img src=x onerror=alert(&quot;value&quot;)&gt;") in page
    signed_in("owner_acute").get(f"/owner/riverside_acute/?q={VALUE}")
    _no_raw_markup(body(signed_in("ig").get("/ig/access/")).decode())
