"""Demo mode: what `partnership` assumes in a data folder the demo generated, so that the next
steps `make demo` prints work as printed.

A folder is a demo folder when the generator's manifest (`demo_truth/manifest.json`) is in it.
There, and only for what the operator did not set: the pseudonymisation key is the local demo key
in `secrets/` (created by `partnership demo`), and the night runs as of the demo data's last day,
so that a fresh demo shows no lateness that only the calendar made. A production data folder has
no such manifest, so none of this applies to it.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

from orchestration.partnership.settings import Settings

KEY_ENV = "PARTNERSHIP_PSEUDONYM_KEY"
KEY_FILE_ENV = "PARTNERSHIP_PSEUDONYM_KEY_FILE"
RUN_DATE_ENV = "PARTNERSHIP_RUN_DATE"


def demo_key_path(settings: Settings) -> Path:
    return settings.secrets_dir / "pseudonym.key"


def demo_as_of(settings: Settings) -> date | None:
    """The demo data's last day, when `settings.data_dir` is a demo folder; else None."""
    manifest = settings.truth_dir / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        return date.fromisoformat(json.loads(manifest.read_text(encoding="utf-8"))["as_of"])
    except (ValueError, KeyError, TypeError):
        return None


def apply_demo_defaults(settings: Settings) -> list[str]:
    """In a demo folder, set the demo key and run date the operator did not set, in this process's
    environment (children, such as `dagster dev`, inherit them). Returns one line per default used."""
    as_of = demo_as_of(settings)
    if as_of is None:
        return []
    said = []
    key = demo_key_path(settings)
    if not (os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV)) and key.is_file():
        os.environ[KEY_FILE_ENV] = str(key)
        said.append(f"the demo's pseudonymisation key {key}")
    if not os.environ.get(RUN_DATE_ENV):
        os.environ[RUN_DATE_ENV] = as_of.isoformat()
        said.append(f"the demo data's last day, {as_of}, as the night's date")
    return said
