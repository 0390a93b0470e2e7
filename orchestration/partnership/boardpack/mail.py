"""Board pack delivery: an e-mail to the board's distribution list, the PDF attached.

SMTP settings come from the environment (see `smtp`), read when a message is sent. The message holds
only what the release holds: the headline values already published to this board.

Each sent pack is recorded in `<data>/reports/board_packs/<protocol>.jsonl` (protocol,
release date, release content hash, recipients, Message-ID), so a night whose release content
equals the last one e-mailed sends nothing, and a failed send is retried the next night.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from orchestration.partnership.ops.smtp import send_message, smtp_settings


class MailNotConfigured(RuntimeError):
    pass


@dataclass(frozen=True)
class MailResult:
    status: str  # sent | not_configured | already_sent
    recipients: tuple[str, ...] = ()
    message_id: str = ""
    detail: str = ""


def recipients(protocol) -> list[str]:
    rec = protocol.doc["recipient"]
    people = rec.get("distribution_list") or ([rec["contact"]] if rec.get("contact") else [])
    bad = [r for r in people if "@" not in r]
    if bad or not people:
        raise ValueError(f"protocol {protocol.id}: recipient.distribution_list holds no usable address {bad or ''}".strip())
    return list(people)


def compose(pack_result, protocol, sender: str) -> EmailMessage:
    from orchestration.partnership.boardpack.render import (
        headline_lines,
        quality_summary,
    )

    pack = pack_result.pack
    to = recipients(protocol)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"{protocol.doc['title']}: board pack, release of {pack.release_date:%-d %B %Y}"
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[-1] if "@" in sender else "localhost")
    lines = [f"Dear {protocol.doc['recipient']['name']},", "",
             f"The board pack for the release of {pack.release_date:%-d %B %Y} is attached ({pack_result.pdf.name}).", "",
             "Headlines:", *headline_lines(pack), ""]
    if pack.quality is not None:
        _, notes = quality_summary(pack.quality)
        lines += ["Data quality in the period:", *([f"  - {n}" for n in notes] or ["  - no late, rejected or over-tolerance deliveries"]), ""]
    lines += [f"Built only from the release {protocol.id}/{pack.release_date.isoformat()} (protocol v{protocol.version}).",
              f"Release content sha256: {pack.manifest['content_sha256']}",
              f"manifest.json sha256:   {pack.manifest_sha256}", ""]
    msg.set_content("\n".join(lines))
    msg.add_attachment(pack_result.pdf.read_bytes(), maintype="application", subtype="pdf",
                       filename=f"{protocol.id}-board-pack-{pack.release_date.isoformat()}.pdf")
    return msg


def _log_path(reports_dir: Path, protocol_id: str) -> Path:
    return Path(reports_dir) / "board_packs" / f"{protocol_id}.jsonl"


def last_sent(reports_dir: Path, protocol_id: str) -> dict | None:
    path = _log_path(reports_dir, protocol_id)
    if not path.exists():
        return None
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return entries[-1] if entries else None


def send_pack(pack_result, protocol, reports_dir: Path, force: bool = False, required: bool = False) -> MailResult:
    """E-mail the pack unless the same release content was already e-mailed (or `force`)."""
    settings = smtp_settings()
    if settings is None:
        if required:
            raise MailNotConfigured("PARTNERSHIP_SMTP_HOST is not set: no board pack can be e-mailed")
        return MailResult("not_configured", detail="not sent: PARTNERSHIP_SMTP_HOST is not set")
    prev = last_sent(reports_dir, protocol.id)
    if not force and prev and prev["content_sha256"] == pack_result.content_sha256:
        return MailResult("already_sent", tuple(prev["recipients"]), prev["message_id"],
                          f"release content already e-mailed on {prev['sent_at']}")
    msg = compose(pack_result, protocol, settings.sender)
    send_message(msg, settings)  # an SMTP failure propagates: the pack is not marked as sent
    to = tuple(recipients(protocol))
    entry = {"protocol": protocol.id, "release_date": pack_result.release_date.isoformat(),
             "content_sha256": pack_result.content_sha256, "html_sha256": pack_result.html_sha256,
             "recipients": list(to), "message_id": msg["Message-ID"],
             "sent_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat()}
    path = _log_path(reports_dir, protocol.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
    return MailResult("sent", to, msg["Message-ID"], f"sent to {', '.join(to)}")
