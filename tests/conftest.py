"""Shared fixtures: a demo night on the `small` preset, run once per session in a temporary folder."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

DEMO_AS_OF = date(2026, 11, 27)
DEMO_RUN_DATE = date(2026, 11, 28)
TEST_KEY = "test-key-" + "0123456789abcdef" * 3

_ENV_KEYS = ("PARTNERSHIP_DATA_DIR", "PARTNERSHIP_WAREHOUSE", "PARTNERSHIP_REFERENCE_DIR", "DAGSTER_HOME",
             "PARTNERSHIP_PSEUDONYM_KEY", "PARTNERSHIP_PSEUDONYM_KEY_FILE", "PARTNERSHIP_RUN_DATE", "GX_ANALYTICS_ENABLED")


@pytest.fixture(scope="session")
def saved_environment():
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def use_data_dir(data_dir: Path, key: str = TEST_KEY, run_date: date = DEMO_RUN_DATE):
    """Point the product at `data_dir`, as `partnership` would, for this process."""
    from orchestration.partnership.settings import get_settings

    os.environ["PARTNERSHIP_DATA_DIR"] = str(data_dir)
    os.environ["DAGSTER_HOME"] = str(data_dir / "dagster_home")
    os.environ["PARTNERSHIP_PSEUDONYM_KEY"] = key
    os.environ.pop("PARTNERSHIP_PSEUDONYM_KEY_FILE", None)
    os.environ["PARTNERSHIP_RUN_DATE"] = run_date.isoformat()
    return get_settings()


@pytest.fixture(scope="session")
def demo_night(tmp_path_factory, saved_environment):
    """The small demo partnership, generated and run through one whole night."""
    from orchestration.partnership.cli import run_night
    from orchestration.partnership.generator import generate

    data_dir = tmp_path_factory.mktemp("night")
    settings = use_data_dir(data_dir)
    generate(data_dir, preset="small", seed=42, as_of=DEMO_AS_OF)
    plant_bad_deliveries(settings.landing_dir)
    result = run_night(settings, quiet=True)
    return settings, result


UNKNOWN_FILE = "unknown_agency/things/things_20261126.csv"
RESENT_FILE = "riverside_acute/emergency_admissions/emergency_admissions_20261126_resent.csv"


def plant_bad_deliveries(landing: Path) -> None:
    """Beside the demo's deliveries: a file no contract knows, and a file sent twice."""
    unknown = landing / UNKNOWN_FILE
    unknown.parent.mkdir(parents=True)
    unknown.write_text("a,b\n1,2\n")
    original = landing / "riverside_acute/emergency_admissions/emergency_admissions_20261126.csv"
    resent = landing / RESENT_FILE
    resent.write_bytes(original.read_bytes())
    st = original.stat()
    os.utime(resent, (st.st_atime, st.st_mtime + 3600))
