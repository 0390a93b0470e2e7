"""The access log: every page view, partial, action and download is recorded with who and what
they got; only the IG lead reads it, filters it (htmx) and exports it as spreadsheet-safe CSV."""

from __future__ import annotations

import csv
import io

import pytest

from tests.portal.conftest import body, release_date

pytestmark = [pytest.mark.dbt_free, pytest.mark.django_db]


def test_every_page_view_and_download_is_recorded_with_its_user_and_answer(signed_in, portal_environment):
    from orchestration.portal.models import AccessEvent

    date = release_date(portal_environment, "falls-analysts")
    client = signed_in("analyst_falls")
    requests = [f"/analyst/falls-analysts/{date}/", f"/analyst/falls-analysts/{date}/csv/falls_pathway_events.csv",
                f"/analyst/falls-analysts/{date}/files/falls-analysts.duckdb", "/board/falls-board/", "/static/portal/portal.css"]
    for url in requests:
        body(client.get(url))
    events = list(AccessEvent.objects.order_by("id").values_list("username", "path", "kind", "status"))
    assert events == [("analyst_falls", requests[0], "page", 200), ("analyst_falls", requests[1], "download", 200),
                      ("analyst_falls", requests[2], "download", 200), ("analyst_falls", requests[3], "page", 404)]


def test_only_the_ig_lead_reads_the_access_log_and_a_filter_returns_only_the_table(signed_in):
    body(signed_in("operator").get("/operator/"))
    ig = signed_in("ig")
    partial = body(ig.get("/ig/access/?user=operator", HTTP_HX_REQUEST="true")).decode()
    assert partial.lstrip().startswith('<div id="access-table">') and "<html" not in partial
    assert "/operator/" in partial and "/ig/access/" not in partial
    for other in ("owner_acute", "analyst_falls", "board_falls", "operator"):
        assert signed_in(other).get("/ig/access/").status_code == 404
        assert signed_in(other).get("/ig/access.csv").status_code == 404


def test_the_export_is_spreadsheet_safe_csv_of_every_event(accounts, signed_in):
    from django.contrib.auth import get_user_model

    from orchestration.portal.models import AccessEvent, Membership

    hostile = get_user_model().objects.create_user(username="=HYPERLINK(\"http://x\")", password="x" * 20)
    Membership.objects.create(user=hostile, role="operator", scope="")
    body(signed_in("operator").get("/operator/"))
    from django.test import Client

    c = Client()
    c.force_login(hostile, backend="django.contrib.auth.backends.ModelBackend")
    body(c.get("/operator/?q=@SUM(A1)"))
    export = signed_in("ig").get("/ig/access.csv")
    assert export["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(body(export).decode())))
    assert rows[0] == ["at", "username", "method", "path", "view", "kind", "status", "ip"]
    assert len(rows) - 1 == AccessEvent.objects.count() - 1  # all but the export's own request, logged after it
    users = {r[1] for r in rows[1:]}
    assert "'=HYPERLINK(\"http://x\")" in users and not any(u.startswith("=") for u in users)
