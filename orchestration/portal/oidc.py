"""Single sign-on by OpenID Connect, on only when configured (PORTAL_OIDC_CLIENT_ID): an identity
the partner's provider vouches for signs in to the existing portal account with the same e-mail
address; roles are still given in the portal, and an unknown identity gets no account."""

from mozilla_django_oidc.auth import OIDCAuthenticationBackend


class PortalOIDCBackend(OIDCAuthenticationBackend):
    def filter_users_by_claims(self, claims):
        email = (claims.get("email") or "").strip()
        if not email or not claims.get("email_verified", False):
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(email__iexact=email, is_active=True)
