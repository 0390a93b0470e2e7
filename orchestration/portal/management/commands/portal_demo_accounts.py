"""`python -m orchestration.portal portal_demo_accounts`: one demo account per role, for the demo
partnership (`make demo`). Each password is random, printed once here and stored only as its
Argon2 hash; an account that exists already is left as it is (its password is not shown again)."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from orchestration.portal import catalogue
from orchestration.portal.models import Membership, Role

# (user name, role, scope): a data owner of two agencies each, an analyst of the two person-level
# protocols, a member of each board, the IG lead and the operator.
DEMO_ACCOUNTS = (
    ("owner.riverside_acute", Role.DATA_OWNER, "riverside_acute"),
    ("owner.county_police", Role.DATA_OWNER, "county_police"),
    ("analyst.falls", Role.ANALYST, "falls-analysts"),
    ("analyst.families", Role.ANALYST, "supporting-families"),
    ("board.falls", Role.BOARD_MEMBER, "falls-board"),
    ("board.safeguarding", Role.BOARD_MEMBER, "safeguarding-board"),
    ("ig.lead", Role.IG_LEAD, ""),
    ("operator", Role.OPERATOR, ""),
)


class Command(BaseCommand):
    help = "Bring the portal's database up to date, create the demo partnership's accounts (one per role); print new passwords once."
    requires_system_checks = []  # the checks import every view; `partnership portal` runs them when it serves

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0, skip_checks=True)
        known = {"agency": set(catalogue.agencies()), "protocol": set(catalogue.protocols()),
                 "board": set(catalogue.board_protocols())}
        User = get_user_model()
        self.stdout.write("Portal accounts (passwords are shown this once; they are stored hashed):")
        for username, role, scope in DEMO_ACCOUNTS:
            kind = {Role.DATA_OWNER: "agency", Role.ANALYST: "protocol", Role.BOARD_MEMBER: "board"}.get(role)
            if kind and scope not in known[kind]:
                continue  # the partnership has no such agency or protocol
            with transaction.atomic():
                user, created = User.objects.get_or_create(username=username)
                if created:
                    password = secrets.token_urlsafe(12)
                    user.set_password(password)
                    user.save()
                Membership.objects.get_or_create(user=user, role=role, scope=scope)
            label = f"{Role(role).label}{' of ' + scope if scope else ''}"
            shown = password if created else "(exists; password not shown again)"
            self.stdout.write(f"  {username:<22} {shown:<36} {label}")
