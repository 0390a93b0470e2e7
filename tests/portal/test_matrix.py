"""Each role sees only its own: every user requests every address of every principal's objects;
their own answer, everything else is 404 (never 403: nothing says the object exists)."""

from __future__ import annotations

import pytest

from tests.portal.conftest import ACCOUNTS, body, ops_rows, release_date

pytestmark = [pytest.mark.dbt_free, pytest.mark.django_db]


def _first_delivery(settings, agency: str) -> int:
    return ops_rows(settings, "select min(delivery_id) from deliveries where agency = ?", [agency])[0][0]


def _failed_delivery(settings, agency: str) -> int | None:
    rows = ops_rows(settings, "select delivery_id from deliveries where agency = ? and (status = 'rejected' "
                              "or rows_quarantined > 0) order by delivery_id limit 1", [agency])
    return rows[0][0] if rows else None


def addresses(settings) -> dict[str, list[str]]:
    """Every GET address of each principal's own objects."""
    out = {}
    for username, role, scope in ACCOUNTS:
        if role == "data_owner":
            d = _first_delivery(settings, scope)
            out[username] = [f"/owner/{scope}/", f"/owner/{scope}/deliveries/{d}/", f"/owner/{scope}/upload/"]
        elif role == "analyst":
            date = release_date(settings, scope)
            table = next((settings.releases_dir / scope / date / "parquet").glob("*.parquet")).stem
            base = f"/analyst/{scope}/{date}/"
            out[username] = [f"/analyst/{scope}/", base, f"{base}models/{table}/", f"{base}csv/{table}.csv",
                             f"{base}files/{scope}.duckdb", f"{base}files/parquet/{table}.parquet",
                             f"{base}files/manifest.json", f"{base}files/data_dictionary.md"]
        elif role == "board_member":
            date = release_date(settings, scope)
            out[username] = [f"/board/{scope}/", f"/board/{scope}/{date}/pack.html", f"/board/{scope}/{date}/pack.pdf"]
        elif role == "ig_lead":
            out[username] = ["/ig/", "/ig/access/", "/ig/access.csv", "/ig/exclusions/"]
        else:
            out[username] = ["/operator/"]
    return out


def crossed(settings) -> list[str]:
    """Addresses that mix one principal's container with another's object: nobody's."""
    acute, police = _first_delivery(settings, "riverside_acute"), _first_delivery(settings, "county_police")
    falls_date = release_date(settings, "falls-analysts")
    return [f"/owner/riverside_acute/deliveries/{police}/", f"/owner/county_police/deliveries/{acute}/",
            f"/analyst/falls-analysts/{falls_date}/files/parquet/family_members.parquet",
            f"/analyst/falls-analysts/{falls_date}/csv/family_members.csv",
            f"/analyst/falls-analysts/{falls_date}/models/family_members/",
            f"/analyst/falls-board/{release_date(settings, 'falls-board')}/",
            f"/board/falls-analysts/{falls_date}/pack.html",
            "/owner/unknown_agency/", "/analyst/asb-hotspots-2025/"]


def test_every_role_gets_its_own_objects_and_a_404_for_everyone_elses(signed_in, portal_environment):
    own = addresses(portal_environment)
    others_and_crossed = crossed(portal_environment)
    failures = []
    for username, _, _ in ACCOUNTS:
        client = signed_in(username)
        for owner, urls in own.items():
            for url in urls:
                status = client.get(url).status_code
                expected = 200 if owner == username else 404
                if status != expected:
                    failures.append(f"{username} GET {url}: {status}, expected {expected}")
        for url in others_and_crossed:
            status = client.get(url).status_code
            if status != 404:
                failures.append(f"{username} GET {url}: {status}, expected 404")
    assert not failures, "\n".join(failures)


def test_actions_on_someone_elses_objects_answer_404(signed_in, portal_environment):
    settings = portal_environment
    acute = _failed_delivery(settings, "riverside_acute")
    police = _failed_delivery(settings, "county_police")
    assert acute and police, "the demo night has deliveries with failures from both agencies"
    for username in ("owner_police", "analyst_falls", "board_falls", "ig", "operator"):
        client = signed_in(username)
        assert client.post(f"/owner/riverside_acute/deliveries/{acute}/acknowledge/",
                           {"rule": "x", "comment": "mine now"}).status_code == 404
        assert client.post("/owner/riverside_acute/upload/", {"contract": "riverside_acute__emergency_admissions"}
                           ).status_code == 404
    owner = signed_in("owner_acute")
    assert owner.post(f"/owner/riverside_acute/deliveries/{police}/acknowledge/",
                      {"rule": "x", "comment": "c"}).status_code == 404
    assert owner.post("/owner/riverside_acute/upload/", {"contract": "county_police__incidents"}).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in_for_every_page(client, portal_environment, db):
    for urls in addresses(portal_environment).values():
        for url in urls:
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith("/sign-in/"), url


def test_the_home_page_and_navigation_name_only_the_users_own_scopes(signed_in):
    page = body(signed_in("owner_acute").get("/")).decode()
    assert "riverside_acute" in page and "county_police" not in page and "Release log" not in page
    page = body(signed_in("analyst_falls").get("/")).decode()
    assert "falls-analysts" in page and "supporting-families" not in page and "falls-board" not in page
    page = body(signed_in("ig").get("/")).decode()
    assert "Release log" in page and "Access log" in page and "Night status" not in page
