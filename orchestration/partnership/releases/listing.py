"""What has been released: the published releases (from their manifests) and the latest
release-log entry of each protocol, for `partnership releases` and the summary after a night."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import connect, table_exists


@dataclass(frozen=True)
class PublishedRelease:
    protocol: str
    release_date: str
    level: str
    rows: int
    content_sha256: str
    folder: Path


@dataclass(frozen=True)
class LogEntry:
    protocol: str
    release_date: date
    status: str
    path: str  # empty when nothing was published
    reason: str  # empty when there is none


def published_releases(settings: Settings) -> list[PublishedRelease]:
    """Every release folder with a manifest, by protocol and date."""
    out = []
    for manifest in sorted(settings.releases_dir.glob("*/*/manifest.json")):
        m = json.loads(manifest.read_text())
        out.append(PublishedRelease(m["protocol"]["id"], m["release_date"], m["protocol"].get("level", ""),
                                    sum(m["row_counts"].values()), m["content_sha256"], manifest.parent))
    return out


def latest_log_entries(settings: Settings) -> list[LogEntry]:
    """The latest ops.release_log entry of each protocol, by protocol (none without a warehouse or a log)."""
    if not settings.warehouse_path.exists():
        return []
    with connect(settings.warehouse_path, read_only=True) as con:
        if not table_exists(con, "ops", "release_log"):
            return []
        rows = con.execute(
            """select protocol_id, release_date, status, coalesce(path, ''), coalesce(reason, '') from ops.release_log
               where seq in (select max(seq) from ops.release_log group by protocol_id) order by protocol_id"""
        ).fetchall()
    return [LogEntry(*r) for r in rows]
