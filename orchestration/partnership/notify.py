"""E-mail to an agency's data owner when a delivery of theirs is rejected or late.

SMTP settings come from the environment, read when a message is sent:
PARTNERSHIP_SMTP_HOST (unset: no e-mail is sent, and the report says so), PARTNERSHIP_SMTP_PORT
(default 25), PARTNERSHIP_SMTP_FROM, and optionally PARTNERSHIP_SMTP_USER,
PARTNERSHIP_SMTP_PASSWORD and PARTNERSHIP_SMTP_STARTTLS (true/false).

A message goes to one agency's owner (the contract's team member with role `owner`) and
speaks only of that agency's delivery: file name, verdict, reason, counts per rule, where
the report is. It carries no row values, masked or not.
"""

from __future__ import annotations

import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from .contracts import Contract
from .engine import Assessment


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    user: str | None
    password: str | None
    starttls: bool


def smtp_settings() -> SmtpSettings | None:
    host = os.environ.get("PARTNERSHIP_SMTP_HOST")
    if not host:
        return None
    return SmtpSettings(
        host=host, port=int(os.environ.get("PARTNERSHIP_SMTP_PORT", "25")),
        sender=os.environ.get("PARTNERSHIP_SMTP_FROM", "partnership-warehouse@localhost"),
        user=os.environ.get("PARTNERSHIP_SMTP_USER") or None, password=os.environ.get("PARTNERSHIP_SMTP_PASSWORD") or None,
        starttls=os.environ.get("PARTNERSHIP_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
    )


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
        lines += [f"  - {r.rule}" + (f": {r.failing_rows} rows" if r.failing_rows else "") for r in failing]
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
        with smtplib.SMTP(settings.host, settings.port, timeout=30) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        return f"not sent: {type(exc).__name__}: {exc}"
    return f"sent to {contract.owner_email}"
