"""The agreement register has its place in the IG lead's navigation only once it is written, and
then only the IG lead may open its pages."""

from __future__ import annotations

import shutil

import pytest

from tests.portal.conftest import body

pytestmark = [pytest.mark.dbt_free, pytest.mark.django_db]


def test_without_a_register_there_is_no_link_and_no_page(signed_in, private_data):
    shutil.rmtree(private_data.reports_dir / "register", ignore_errors=True)
    page = body(signed_in("ig").get("/")).decode()
    assert "Agreement register" not in page
    assert signed_in("ig").get("/ig/register/index.html").status_code == 404


def test_the_register_the_night_wrote_is_linked_for_the_ig_lead_alone(signed_in, portal_data, private_data):
    written = portal_data.night.reports_dir / "register"
    assert (written / "index.html").is_file(), "the night writes the agreement register"
    shutil.copytree(written, private_data.reports_dir / "register", dirs_exist_ok=True)
    page = body(signed_in("ig").get("/")).decode()
    assert 'href="/ig/register/index.html"' in page and "Agreement register" in page
    index = signed_in("ig").get("/ig/register/index.html")
    assert index.status_code == 200 and "sandbox" in index["Content-Security-Policy"]
    for other in ("owner_acute", "analyst_falls", "board_falls", "operator"):
        assert "Agreement register" not in body(signed_in(other).get("/")).decode()
        assert signed_in(other).get("/ig/register/index.html").status_code == 404
