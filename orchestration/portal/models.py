"""What the portal itself keeps, in its own database (never the warehouse): who holds which role
for which agency, protocol or board; data owners' acknowledgements of rule failures; the files
they uploaded; and the access log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    DATA_OWNER = "data_owner", "Data owner"
    ANALYST = "analyst", "Analyst"
    BOARD_MEMBER = "board_member", "Board member"
    IG_LEAD = "ig_lead", "IG lead"
    OPERATOR = "operator", "Operator"


# What a membership's scope names, per role: an agency, a protocol, a board's protocol, or nothing.
SCOPE_KIND = {Role.DATA_OWNER: "agency", Role.ANALYST: "protocol", Role.BOARD_MEMBER: "board",
              Role.IG_LEAD: None, Role.OPERATOR: None}


class Membership(models.Model):
    """One role of one user for one agency (data owner), protocol (analyst) or board protocol
    (board member); the IG lead and the operator have a role with an empty scope."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    scope = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "role", "scope"], name="one_membership_per_scope")]

    def __str__(self) -> str:
        return f"{self.user}: {self.role} {self.scope}".strip()


class Acknowledgement(models.Model):
    """A data owner's comment on one rule's failure in one delivery of their agency."""

    agency = models.CharField(max_length=100)
    delivery_id = models.BigIntegerField()
    rule = models.CharField(max_length=300)
    comment = models.TextField(max_length=2000)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["agency", "delivery_id"])]
        ordering = ["created_at"]


class Upload(models.Model):
    """A corrected file a data owner uploaded: checked by the contract engine, and placed in the
    landing folder under `landing_name` only if it passed."""

    agency = models.CharField(max_length=100)
    contract_id = models.CharField(max_length=200)
    original_name = models.CharField(max_length=300)
    landing_name = models.CharField(max_length=300, blank=True, default="")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    status = models.CharField(max_length=20)  # a key of policies.UPLOAD_NEXT_MOVE
    reason = models.TextField(blank=True, default="")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class AccessEvent(models.Model):
    """One request: who asked for which page or file, when, and what they were given."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True, default="")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2000)
    view = models.CharField(max_length=100, blank=True, default="")
    kind = models.CharField(max_length=10)  # page | download | partial | action
    status = models.PositiveSmallIntegerField()
    ip = models.GenericIPAddressField(null=True)

    class Meta:
        ordering = ["-at", "-id"]
