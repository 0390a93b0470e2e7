"""Which state changes are allowed at all, whoever asks (permissions.py says who may ask).

Two small state machines, written as data: for each status, who owns the next move (None: no
move is left). A test checks every status appears once and every owner is a role or the night.
"""

from __future__ import annotations

import fnmatch
import re

from orchestration.partnership.contracts.model import Contract
from orchestration.portal.models import Role

NIGHT = "night"  # the scheduled run, not a person

# A rule failure of a delivery: open until its data owner acknowledges it with a comment.
FAILURE_NEXT_MOVE = {
    "open": Role.DATA_OWNER,
    "acknowledged": None,
}

# A corrected file a data owner uploads: refused by the contract check (the owner sends another),
# or placed in the landing folder (the night registers it), then registered as a delivery.
UPLOAD_NEXT_MOVE = {
    "refused": Role.DATA_OWNER,
    "placed": NIGHT,
    "registered": None,
}

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def failed_rules(delivery: dict) -> list[str]:
    """The rules a delivery failed: each row rule with failing rows, or the file-level reason of a
    rejected delivery (as the owner's report names them)."""
    if delivery["status"] == "rejected" and delivery.get("reason_code"):
        return [f"(file) {delivery['reason_code']}"]
    return sorted(rule for rule, n in (delivery.get("rule_counts") or {}).items() if n)


def failure_state(acknowledged: bool) -> str:
    return "acknowledged" if acknowledged else "open"


def may_acknowledge(delivery: dict, rule: str, already_acknowledged: bool) -> bool:
    """A failure the delivery really has, still open."""
    return rule in failed_rules(delivery) and FAILURE_NEXT_MOVE[failure_state(already_acknowledged)] == Role.DATA_OWNER


def upload_name_problem(name: str, contract: Contract) -> str | None:
    """Why a file of this name may not be placed for this contract, or None: a plain name (no
    folder, no markup) that the night would register for the contract (its file pattern)."""
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        return "a file name may hold only letters, digits, '.', '_' and '-'"
    if not fnmatch.fnmatch(name, contract.delivery.file_pattern):
        return f"the file name does not match the contract's pattern {contract.delivery.file_pattern}"
    return None


def may_place(assessment_status: str) -> bool:
    """Only a file the contract check accepts goes to the landing folder."""
    return assessment_status == "accepted"
