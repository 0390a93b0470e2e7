"""The one SMTP client: settings from the environment, read when a message is sent.

PARTNERSHIP_SMTP_HOST (unset: nothing is sent, and callers say so), PARTNERSHIP_SMTP_PORT
(default 25), PARTNERSHIP_SMTP_FROM, and optionally PARTNERSHIP_SMTP_USER,
PARTNERSHIP_SMTP_PASSWORD and PARTNERSHIP_SMTP_STARTTLS (true/false).
"""

from __future__ import annotations

import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage


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


def send_message(msg: EmailMessage, settings: SmtpSettings, timeout: float = 60) -> None:
    with smtplib.SMTP(settings.host, settings.port, timeout=timeout) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(msg)
