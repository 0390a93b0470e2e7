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
    from orchestration.partnership.demo import generate

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


# ----------------------------------------------------------------------------- work beside dbt-free tests

IN_BACKGROUND = "tests/e2e/test_crash_recovery.py"
"""Its killed and resumed nights (minutes of real `partnership run` processes, in which pytest
only watches) run in a background thread while pytest runs the tests marked `dbt_free`; then its
own tests, then AFTER_BACKGROUND. Otherwise the usual order."""

AFTER_BACKGROUND = ("tests/e2e/test_second_night.py",)
"""Runs the demo night's own folder again (a `dbt parse` for it): after the sequence, and after the
tests that read that folder."""

DBT_FREE = "dbt_free"
"""The marker (`pytestmark = pytest.mark.dbt_free`) of a test module that never starts dbt: no
night of its own, no `dbt parse`, no staged seeds. Only these may run while the background
sequence does: dbt_project/target and seeds/place are shared by every dbt invocation in the
checkout, and two dbt builds of the project must never run at once. A test that starts dbt does
not belong in a module so marked; the `statistics_functions` fixture (dbt renders them once per
session, in a throw-away project) is compiled before the sequence starts."""

_ROOT = Path(__file__).resolve().parents[1]


def _rel(item) -> str:
    return Path(item.path).resolve().relative_to(_ROOT).as_posix()


def pytest_collection_modifyitems(session, config, items):
    background = [i for i in items if _rel(i) == IN_BACKGROUND]
    beside = [i for i in items if i.get_closest_marker(DBT_FREE) is not None and i not in background]
    if not background or not beside:
        return
    after = [i for i in items if _rel(i).startswith(AFTER_BACKGROUND) and i not in beside]
    rest = [i for i in items if i not in background and i not in beside and i not in after]
    items[:] = rest + beside + background + after
    beside[0].fixturenames.insert(0, "background_started")  # set up first: before that test's own fixtures


@pytest.fixture(scope="session")
def background_started(crash_sequence, statistics_functions):
    # the statistics functions hand-built warehouses need are compiled by dbt (in a throw-away
    # project) before the background sequence starts, so that the dbt-free tests start none
    crash_sequence.start()


@pytest.fixture(scope="session")
def crash_sequence(demo_night, tmp_path_factory):
    """tests/e2e/test_crash_recovery.py's sequence, started beside the dbt-free tests or, if none
    run, by its own tests."""
    from tests.e2e.test_crash_recovery import CrashSequence

    data_dir = tmp_path_factory.mktemp("crash") / "data"
    data_dir.mkdir(mode=0o700)  # the data folder is the warehouse account's alone, or no night runs
    sequence = CrashSequence(demo_night[0], data_dir)
    yield sequence
    sequence.close()


@pytest.fixture(scope="session")
def statistics_functions(tmp_path_factory) -> list[str]:
    """The statements creating the warehouse's statistics functions (schema stats), as dbt renders
    them, for warehouses a test builds by hand (a dbt process of its own in a throw-away project:
    nothing of the checkout's dbt folders is touched)."""
    from tests.statistics_project import compile_statistics_functions

    return compile_statistics_functions(tmp_path_factory.mktemp("statistics_functions"))
