"""E-mail to an agency's data owner when a delivery of theirs is rejected or late.

SMTP settings come from the environment (see `smtp`); without PARTNERSHIP_SMTP_HOST no e-mail
is sent, and the report says so.

A message goes to one agency's owner (the contract's team member with role `owner`) and
speaks only of that agency's delivery: file name, verdict, reason, counts per rule, where
the report is. It carries no row values, masked or not.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.ops.smtp import send_message, smtp_settings
from orchestration.partnership.validation.engine import Assessment


def needs_notice(a: Assessment) -> bool:
    return not a.accepted or a.late


def compose(contract: Contract, a: Assessment, delivery_id: int | None, report: Path | None, sender: str) -> EmailMessage:
    what = "rejected" if not a.accepted else "accepted, but late"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = contract.owner_email
    msg["Subject"] = f"[partnership] {contract.id}: delivery {a.file_name} {what}"
    lines = [
        f"Dear {contract.owner_role},", "",
        f"Your delivery {a.file_name} (extract {contract.extract}, contract {contract.id} v{contract.version}) was {what}.",
        f"Delivery id: {delivery_id}; sha256: {a.sha256}.",
    ]
    if a.reason:
        lines.append(f"Reason: {a.reason}")
    if a.late and a.due_at:
        lines.append(f"It arrived {a.arrived_at:%Y-%m-%d %H:%M} UTC; it was due by {a.due_at:%Y-%m-%d %H:%M} UTC.")
    if a.rows_read:
        lines.append(f"Rows read {a.rows_read} = valid {a.rows_valid} + quarantined {a.rows_quarantined}.")
    failing = [r for r in a.rules if not r.passed]
    if failing:
        lines += ["", "Rules not met:"]
        lines += [f"  - {r.rule}" + (f": {r.failing_rows} rows" if r.failing_rows else "")
                  + (f" (expected: {r.expected})" if r.expected else "") for r in failing]
    if not a.accepted:
        lines += ["", "The data from your last accepted delivery stays in use until a corrected file arrives."]
    if report is not None:
        lines += ["", f"Full report: {report}"]
    lines += ["", "You can check a file before sending it with: partnership check FILE --contract " + contract.id]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def notify_owner(contract: Contract, a: Assessment, delivery_id: int | None, report: Path | None) -> str:
    """Send the notice if one is needed. Returns what happened, for the report and the run log."""
    if not needs_notice(a):
        return "not needed"
    settings = smtp_settings()
    if settings is None:
        return "not sent: PARTNERSHIP_SMTP_HOST is not set"
    if not contract.owner_email or "@" not in contract.owner_email:
        return "not sent: the contract's owner has no e-mail address"
    msg = compose(contract, a, delivery_id, report, settings.sender)
    try:
        send_message(msg, settings, timeout=30)
    except (OSError, smtplib.SMTPException) as exc:
        return f"not sent: {type(exc).__name__}: {exc}"
    return f"sent to {contract.owner_email}"
