"""The permission functions and the state machines on their own: fast, no pages."""

from __future__ import annotations

import pytest

from orchestration.portal import permissions as perms
from orchestration.portal import policies
from orchestration.portal.models import SCOPE_KIND, Role

pytestmark = [pytest.mark.dbt_free, pytest.mark.django_db]


@pytest.mark.parametrize("machine", [policies.FAILURE_NEXT_MOVE, policies.UPLOAD_NEXT_MOVE])
def test_each_state_machine_names_every_status_once_and_an_owner_for_each_move(machine):
    assert len(machine) == len(set(machine))
    assert all(owner in (*Role.values, policies.NIGHT, None) for owner in machine.values())
    assert list(machine.values())[-1] is None  # the last status ends it


def test_every_role_has_a_scope_kind():
    assert set(SCOPE_KIND) == set(Role)


def test_each_check_raises_a_404_exactly_when_its_question_answers_no(accounts):
    user = accounts["owner_acute"]
    for agency in ("riverside_acute", "county_police", "no_such_agency"):
        allowed = perms.user_can_view_agency(user, agency)
        if allowed:
            perms.check_user_can_view_agency(user, agency)
        else:
            with pytest.raises(perms.NotPermitted):
                perms.check_user_can_view_agency(user, agency)
    assert perms.user_can_view_agency(user, "riverside_acute") and not perms.user_can_view_agency(user, "county_police")
    assert perms.user_can_view_protocol(accounts["analyst_falls"], "falls-analysts")
    assert not perms.user_can_view_protocol(accounts["analyst_falls"], "supporting-families")
    assert perms.user_can_view_board(accounts["board_falls"], "falls-board")
    assert not perms.user_can_view_board(accounts["board_falls"], "safeguarding-board")
    assert not perms.user_can_view_board(accounts["analyst_falls"], "falls-board")
    assert perms.user_is_ig_lead(accounts["ig"]) and not perms.user_is_ig_lead(accounts["operator"])
    assert perms.user_is_operator(accounts["operator"]) and not perms.user_is_operator(accounts["ig"])


def test_a_board_membership_of_a_person_level_protocol_gives_nothing(accounts):
    from orchestration.portal.models import Membership

    Membership.objects.create(user=accounts["board_falls"], role=Role.BOARD_MEMBER, scope="falls-analysts")
    accounts["board_falls"]._portal_memberships = None
    assert not perms.user_can_view_board(accounts["board_falls"], "falls-analysts")


def test_a_deactivated_user_holds_no_role(accounts):
    user = accounts["ig"]
    user.is_active = False
    user._portal_memberships = None
    assert not perms.user_is_ig_lead(user)


def test_a_delivery_of_another_agency_is_not_viewable_under_ones_own():
    class Owner:
        is_authenticated = is_active = True
        _portal_memberships = {(Role.DATA_OWNER, "riverside_acute")}

    assert perms.user_can_view_delivery(Owner(), "riverside_acute", {"agency": "riverside_acute"})
    assert not perms.user_can_view_delivery(Owner(), "riverside_acute", {"agency": "county_police"})
    assert not perms.user_can_view_delivery(Owner(), "riverside_acute", None)


def test_only_a_failure_the_delivery_has_and_still_open_may_be_acknowledged():
    d = {"status": "accepted", "reason_code": None, "rule_counts": {"sex:allowed_values": 2, "x:not_null": 0}}
    assert policies.failed_rules(d) == ["sex:allowed_values"]
    assert policies.may_acknowledge(d, "sex:allowed_values", already_acknowledged=False)
    assert not policies.may_acknowledge(d, "sex:allowed_values", already_acknowledged=True)
    assert not policies.may_acknowledge(d, "x:not_null", already_acknowledged=False)
    rejected = {"status": "rejected", "reason_code": "late", "rule_counts": {}}
    assert policies.failed_rules(rejected) == ["(file) late"]


@pytest.mark.parametrize("name", ["../emergency_admissions_1.csv", "emergency_admissions_<b>.csv", ".hidden.csv",
                                  "emergency_admissions_1.csv/x", "admissions.csv", "emergency_admissions_1 .csv"])
def test_an_upload_name_that_is_not_a_plain_name_of_the_contracts_pattern_is_refused(name):
    from orchestration.portal import catalogue

    contract = catalogue.contracts()["riverside_acute__emergency_admissions"]
    assert policies.upload_name_problem(name, contract)
    assert policies.upload_name_problem("emergency_admissions_20261201.csv", contract) is None
