"""Where things live. Resolved from the environment at call time, never at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    project_root: Path = PROJECT_ROOT

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def reference_dir(self) -> Path:
        return self.data_dir / "reference"

    @property
    def releases_dir(self) -> Path:
        return self.data_dir / "releases"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def truth_dir(self) -> Path:
        """The demo generator's ground truth. The pipeline never reads it; tests do."""
        return self.data_dir / "demo_truth"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    @property
    def contracts_dir(self) -> Path:
        return self.project_root / "contracts" / "agencies"

    @property
    def protocols_dir(self) -> Path:
        return self.project_root / "contracts" / "protocols"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_root / "dbt_project"


def get_settings() -> Settings:
    """The data folder is `PARTNERSHIP_DATA_DIR`, else `data/` in the project."""
    data_dir = Path(os.environ.get("PARTNERSHIP_DATA_DIR") or PROJECT_ROOT / "data")
    return Settings(data_dir=data_dir.resolve())


def replay_date() -> date | None:
    """The day a replay (or a test) runs as: `PARTNERSHIP_RUN_DATE`, the one place it is read; None when unset."""
    value = os.environ.get("PARTNERSHIP_RUN_DATE")
    return date.fromisoformat(value) if value else None


def run_date() -> date:
    """The date a night runs for: the replay date, else today in Europe/London."""
    return replay_date() or datetime.now(ZoneInfo("Europe/London")).date()
