"""The releases made under each agreement, from ops.release_log and the release folders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from orchestration.partnership.warehouse.connection import connect, table_exists


@dataclass(frozen=True)
class Made:
    release_date: date
    protocol_version: str
    status: str  # published | blocked (the nights a release was stopped)
    content_sha256: str
    reason: str
    held: bool  # its folder is still in the secure zone (else deleted under retention)
    unsigned_text: bool | None = None  # made under a protocol text other than the one signed (None: not known)


@dataclass(frozen=True)
class History:
    made: list[Made]  # published and blocked entries, newest first
    nights: dict[str, int]  # status -> number of log entries
    latest: tuple[date, str, str] | None  # (release date, status, reason) of the latest entry


def read_history(warehouse: Path, releases_dir: Path) -> dict[str, History]:
    """Protocol id -> what the release log says of it; empty without a warehouse or a log. Read-only.
    The log names release folders relative to the data folder (the releases folder's parent)."""
    if not Path(warehouse).exists():
        return {}
    with connect(warehouse, read_only=True) as con:
        if not table_exists(con, "ops", "release_log"):
            return {}
        rows = con.execute("""select protocol_id, release_date, protocol_version, status, coalesce(path, ''),
                                     coalesce(content_sha256, ''), coalesce(reason, '')
                              from ops.release_log order by seq""").fetchall()
    out: dict[str, History] = {}
    for pid, day, version, status, path, content, reason in rows:
        h = out.setdefault(pid, History([], {}, None))
        h.nights[status] = h.nights.get(status, 0) + 1
        if status in ("published", "blocked"):
            manifest = Path(releases_dir).parent / path / "manifest.json" if path else None
            held = manifest is not None and manifest.exists()
            h.made.insert(0, Made(day, version, status, content, reason, held,
                                  _unsigned_text(manifest) if held else None))
        out[pid] = History(h.made, h.nights, (day, status, reason))
    return out


def _unsigned_text(manifest: Path) -> bool | None:
    """Whether the release's manifest says it was made under a protocol text other than the one
    signed; None when the manifest does not say (made before manifests recorded it)."""
    try:
        protocol = json.loads(manifest.read_text()).get("protocol", {})
    except (OSError, ValueError, AttributeError):
        return None
    if "text_sha256" not in protocol:
        return None
    return protocol["text_sha256"] != protocol.get("signed_text_sha256")
