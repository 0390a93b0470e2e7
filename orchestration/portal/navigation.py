"""The navigation of the signed-in user: one entry per role and scope they hold, nothing else."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from orchestration.partnership.register.build import register_dir
from orchestration.partnership.settings import get_settings
from orchestration.portal import permissions as perms
from orchestration.portal.models import Role


def register_index():
    """The agreement register's index, once `partnership register` (or the night) wrote it."""
    path = register_dir(get_settings()) / "index.html"
    return path if path.is_file() else None


def entries(user) -> list[tuple[str, str]]:
    out = []
    for agency in perms.scopes(user, Role.DATA_OWNER):
        out.append((f"Deliveries: {agency}", reverse("portal:owner_agency", args=[agency])))
    for pid in perms.scopes(user, Role.ANALYST):
        out.append((f"Releases: {pid}", reverse("portal:analyst_protocol", args=[pid])))
    for pid in perms.scopes(user, Role.BOARD_MEMBER):
        out.append((f"Board packs: {pid}", reverse("portal:board_packs", args=[pid])))
    if perms.user_is_ig_lead(user):
        out.append(("Release log", reverse("portal:ig_home")))
        out.append(("Access log", reverse("portal:ig_access")))
        out.append(("Opt-outs and consent", reverse("portal:ig_exclusions")))
        if register_index():
            out.append(("Agreement register", reverse("portal:ig_register_file", args=["index.html"])))
    if perms.user_is_operator(user):
        out.append(("Night status", reverse("portal:operator_home")))
    return out


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    return {"nav": entries(user) if user and user.is_authenticated else [], "oidc_enabled": settings.OIDC_ENABLED}
