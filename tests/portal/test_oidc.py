"""Single sign-on signs in to an existing, active account with the provider's verified e-mail
address, and to nothing else: no account is made, an unverified address matches nobody."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.dbt_free, pytest.mark.django_db]


@pytest.fixture
def backend(settings):
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "portal", "secret"
    for name in ("AUTHORIZATION", "TOKEN", "USER", "JWKS"):
        setattr(settings, f"OIDC_OP_{name}_ENDPOINT", f"https://sso.partner.example/{name.lower()}")
    settings.OIDC_RP_SIGN_ALGO, settings.OIDC_CREATE_USER = "RS256", False
    from orchestration.portal.oidc import PortalOIDCBackend

    return PortalOIDCBackend()


def test_a_verified_address_signs_in_to_its_active_account_only(backend, accounts):
    user = accounts["analyst_falls"]
    user.email = "Analyst@Partner.example"
    user.save()
    found = backend.filter_users_by_claims({"email": "analyst@partner.example", "email_verified": True})
    assert list(found) == [user]
    assert not backend.filter_users_by_claims({"email": "analyst@partner.example", "email_verified": False}).exists()
    assert not backend.filter_users_by_claims({"email": "nobody@partner.example", "email_verified": True}).exists()
    user.is_active = False
    user.save()
    assert not backend.filter_users_by_claims({"email": "analyst@partner.example", "email_verified": True}).exists()
    assert not backend.get_settings("OIDC_CREATE_USER", True)  # an unknown identity gets no account
