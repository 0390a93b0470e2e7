"""A file that cannot be parsed is rejected with a clear reason, and every other agency's
deliveries are processed all the same (real files, real DuckDB, no mocks)."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import duckdb
import pytest

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.demo import generate
from orchestration.partnership.ingest.holdback import blocking_rejections
from orchestration.partnership.ingest.night import (
    check_key,
    process_extract,
    register_deliveries,
)
from tests.conftest import DEMO_AS_OF, use_data_dir

pytestmark = pytest.mark.dbt_free


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, saved_environment):
    data_dir = tmp_path_factory.mktemp("bad-input")
    settings = use_data_dir(data_dir)
    generate(data_dir, preset="small", seed=42, as_of=DEMO_AS_OF)
    garbage = settings.landing_dir / "county_police" / "incidents" / "incidents_20261127.csv"
    garbage.write_bytes(bytes(range(256)) * 40)
    on_time = datetime(2026, 11, 28, 1, 30, tzinfo=timezone.utc).timestamp()  # before its 06:00 deadline
    os.utime(garbage, (on_time, on_time))
    contracts = load_contracts(settings.contracts_dir)
    register_deliveries(settings, contracts)
    pads = check_key(settings)
    outcomes = {cid: process_extract(settings, c, pads) for cid, c in contracts.items()}
    return settings, outcomes


def test_an_unparseable_file_is_rejected_with_a_reason_naming_the_file(ingested):
    settings, outcomes = ingested
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        status, code, reason = con.execute(
            "select status, reason_code, reason from ops.deliveries where file_name = 'incidents_20261127.csv'").fetchall()[0]
    assert (status, code) == ("rejected", "encoding")
    assert reason.startswith("incidents_20261127.csv: ")
    assert outcomes["county_police__incidents"].rejected == 1
    assert blocking_rejections(settings, "county_police__incidents") == [reason]


def test_every_other_delivery_is_processed_all_the_same(ingested):
    settings, outcomes = ingested
    for cid, outcome in outcomes.items():
        assert outcome.accepted >= 2, cid
        if cid != "county_police__incidents":
            assert outcome.rejected == 0, cid
            assert blocking_rejections(settings, cid) == []


def test_processing_again_registers_and_loads_nothing_new(ingested):
    settings, _ = ingested
    contracts = load_contracts(settings.contracts_dir)
    assert register_deliveries(settings, contracts) == []
    pads = check_key(settings)
    again = process_extract(settings, contracts["riverside_acute__emergency_admissions"], pads)
    assert (again.accepted, again.rejected, again.rows_read) == (0, 0, 0)


def test_a_different_key_on_a_later_night_is_a_clear_error(ingested, monkeypatch):
    from orchestration.partnership.warehouse.pseudonymise import PseudonymKeyError

    settings, _ = ingested
    monkeypatch.setenv("PARTNERSHIP_PSEUDONYM_KEY", "another-key-" + "x" * 40)
    with pytest.raises(PseudonymKeyError, match="differs from the one this warehouse was built with"):
        check_key(settings)
