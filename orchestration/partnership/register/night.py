"""The night's register step: write the register and warn of agreements that need attention.

The warnings go to the run log (returned, for the caller to log), to the register's index, and
by e-mail to operations (`PARTNERSHIP_OPS_EMAIL`, over `ops.smtp`) when the list differs from the
one last e-mailed, so a standing warning is not sent every night. An expired agreement is shown
on the index but not warned of: its release produces nothing, as the release log says.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.register.build import RegisterResult, write_register
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.settings import Settings

WARNED_FILE = ".warnings_sent"  # in the register folder: the sha256 of the warnings last e-mailed


@dataclass(frozen=True)
class NightRegister:
    result: RegisterResult
    mail: str  # sent | already_sent | not_configured | nothing_to_send
    detail: str

    @property
    def warnings(self) -> list[str]:
        return self.result.warnings


def night_register(settings: Settings, on: date, protocols: dict[str, Protocol],
                   contracts: dict[str, Contract]) -> NightRegister:
    from orchestration.partnership.ops.alerts import (
        OPS_EMAIL_ENV,
        compose_register_warning,
    )
    from orchestration.partnership.ops.smtp import send_message, smtp_settings

    result = write_register(settings, on, protocols, contracts)
    warnings = result.warnings
    marker = result.folder / WARNED_FILE
    digest = hashlib.sha256("\n".join(warnings).encode()).hexdigest()
    if not warnings:
        marker.unlink(missing_ok=True)  # the next warning is news again
        return NightRegister(result, "nothing_to_send", "no agreement needs attention")
    if marker.is_file() and marker.read_text().strip() == digest:
        return NightRegister(result, "already_sent", "these warnings were e-mailed before")
    to, smtp = os.environ.get(OPS_EMAIL_ENV), smtp_settings()
    if not to or smtp is None:
        missing = [n for n, v in ((OPS_EMAIL_ENV, to), ("PARTNERSHIP_SMTP_HOST", smtp)) if not v]
        return NightRegister(result, "not_configured", f"not e-mailed: {', '.join(missing)} not set")
    send_message(compose_register_warning(warnings, on, str(result.folder / "index.html"), smtp.sender, to), smtp)
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(digest + "\n")
    return NightRegister(result, "sent", f"e-mailed to {to}")
