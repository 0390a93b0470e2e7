"""A night may not run as a day before the latest accepted delivery, unless a rebuild is asked for."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from orchestration.partnership.cli import main
from orchestration.partnership.ops.rundate import RunDateError, check_run_date
from orchestration.partnership.warehouse.connection import connect, ensure_schemas
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.dbt_free


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "data" / "warehouse.duckdb"
    path.parent.mkdir(mode=0o700)
    with connect(path) as con:
        ensure_schemas(con)
        rows = [(1, "incidents_20261126.csv", datetime(2026, 11, 27, 1, 30), "accepted"),
                (2, "incidents_20261127.csv", datetime(2026, 11, 28, 23, 30), "rejected"),  # rejected: not counted
                (3, "incidents_20261125.csv", datetime(2026, 11, 26, 23, 30), "accepted")]  # 23:30 UTC is the 26th in London
        for did, name, arrived, status in rows:
            con.execute("""insert into ops.deliveries (delivery_id, file_name, landing_path, sha256, size_bytes, arrived_at,
                               registered_at, status) values (?, ?, ?, '', 0, ?, ?, ?)""",
                        [did, name, name, arrived, arrived, status])
    return path


def test_a_run_date_before_the_latest_accepted_delivery_is_refused_naming_it(warehouse):
    with pytest.raises(RunDateError, match=r"2026-01-15 .* before the latest accepted delivery \(incidents_20261126.csv, "
                                           r"arrived 2026-11-27\)"):
        check_run_date(warehouse, date(2026, 1, 15), rebuild=False)
    with pytest.raises(RunDateError):
        check_run_date(warehouse, date(2026, 11, 26), rebuild=False)
    check_run_date(warehouse, date(2026, 11, 27), rebuild=False)  # the day it arrived
    check_run_date(warehouse, date(2026, 1, 15), rebuild=True)  # asked for


def test_partnership_run_refuses_a_back_dated_night_before_it_starts_unless_rebuild_is_passed(
        warehouse, monkeypatch, capsys):
    import orchestration.runtime.night as runtime_night
    from orchestration.partnership.cli.console import CliError

    data = warehouse.parent
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(data))
    monkeypatch.setenv("PARTNERSHIP_RUN_DATE", "2026-01-15")
    monkeypatch.setenv("PARTNERSHIP_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.delenv("PARTNERSHIP_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.setenv("PARTNERSHIP_REBUILD", "")  # restored after the test: `--rebuild` sets it for the process
    started = []

    def night_starts(settings, progress):  # where dbt and Dagster would begin: not needed to see the gate
        started.append(settings.data_dir)
        raise CliError("the night starts here")

    monkeypatch.setattr(runtime_night, "_run_locked", night_starts)
    assert main(["run"]) == 2
    assert "before the latest accepted delivery" in " ".join(capsys.readouterr().err.split())
    assert started == [] and not (data / "logs").exists(), "no night ran"
    assert main(["run", "--rebuild"]) == 2
    assert "the night starts here" in capsys.readouterr().err and started == [data]
