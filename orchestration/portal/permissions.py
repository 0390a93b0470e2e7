"""Who may see what: small functions of (user, object). `user_can_*` answer with a boolean,
`check_user_can_*` raise `NotPermitted`, which answers 404: a user learns nothing of what is not
theirs, not even that it exists. Views call these and nothing else decides access."""

from __future__ import annotations

from django.http import Http404

from orchestration.portal import catalogue
from orchestration.portal.models import Membership, Role


class NotPermitted(Http404):
    pass


def memberships(user) -> set[tuple[str, str]]:
    """(role, scope) pairs of an active, signed-in user; read once per request."""
    if not (user and user.is_authenticated and user.is_active):
        return set()
    cached = getattr(user, "_portal_memberships", None)
    if cached is None:
        cached = set(Membership.objects.filter(user=user).values_list("role", "scope"))
        user._portal_memberships = cached
    return cached


def scopes(user, role: Role) -> list[str]:
    return sorted(scope for r, scope in memberships(user) if r == role)


def user_can_view_agency(user, agency: str) -> bool:
    return (Role.DATA_OWNER, agency) in memberships(user) and agency in catalogue.agencies()


def user_can_view_delivery(user, agency: str, delivery: dict | None) -> bool:
    return delivery is not None and delivery.get("agency") == agency and user_can_view_agency(user, agency)


def user_can_upload_for(user, agency: str, contract_id: str) -> bool:
    contract = catalogue.contracts().get(contract_id)
    return contract is not None and contract.agency == agency and user_can_view_agency(user, agency)


def user_can_view_protocol(user, protocol_id: str) -> bool:
    return (Role.ANALYST, protocol_id) in memberships(user) and protocol_id in catalogue.protocols()


def user_can_view_board(user, protocol_id: str) -> bool:
    return (Role.BOARD_MEMBER, protocol_id) in memberships(user) and protocol_id in catalogue.board_protocols()


def user_is_ig_lead(user) -> bool:
    return (Role.IG_LEAD, "") in memberships(user)


def user_is_operator(user) -> bool:
    return (Role.OPERATOR, "") in memberships(user)


def _check(allowed: bool) -> None:
    if not allowed:
        raise NotPermitted("not found")


def check_user_can_view_agency(user, agency: str) -> None:
    _check(user_can_view_agency(user, agency))


def check_user_can_view_delivery(user, agency: str, delivery: dict | None) -> None:
    _check(user_can_view_delivery(user, agency, delivery))


def check_user_can_upload_for(user, agency: str, contract_id: str) -> None:
    _check(user_can_upload_for(user, agency, contract_id))


def check_user_can_view_protocol(user, protocol_id: str) -> None:
    _check(user_can_view_protocol(user, protocol_id))


def check_user_can_view_board(user, protocol_id: str) -> None:
    _check(user_can_view_board(user, protocol_id))


def check_user_is_ig_lead(user) -> None:
    _check(user_is_ig_lead(user))


def check_user_is_operator(user) -> None:
    _check(user_is_operator(user))
