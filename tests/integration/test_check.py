"""`partnership check` runs the nightly engine on a file before it is sent, and reaches the same verdict."""

from __future__ import annotations

import json

import duckdb
import pytest

from orchestration.partnership.cli import main
from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.settings import Settings
from orchestration.partnership.validation.check import check_file

pytestmark = pytest.mark.dbt_free


@pytest.fixture(scope="module")
def night(demo_night):
    settings, _ = demo_night
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        cur = con.execute("select * from ops.deliveries where contract_id is not null order by delivery_id")
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    return settings, rows


def test_check_and_the_nightly_run_reach_the_same_verdict_on_every_demo_file(night, tmp_path):
    settings, rows = night
    contracts = load_contracts(settings.contracts_dir)
    elsewhere = Settings(data_dir=tmp_path)  # no warehouse: a data owner's machine
    assert rows
    for d in rows:
        # A duplicate is judged against the warehouse that holds the first copy; everything else needs none.
        where = settings if d["reason_code"] == "duplicate" else elsewhere
        a = check_file(settings.landing_dir / d["landing_path"], contracts[d["contract_id"]], where, d["arrived_at"])
        assert (a.status, a.reason_code) == (d["status"], d["reason_code"]), d["file_name"]
        if d["status"] == "accepted":
            assert (a.rows_read, a.rows_valid, a.rows_quarantined) == (d["rows_read"], d["rows_valid"], d["rows_quarantined"])
            assert a.rule_counts == json.loads(d["rule_counts"])
            assert a.warnings == json.loads(d["warnings"])


def test_check_says_a_file_already_accepted_would_be_rejected_as_a_duplicate(night):
    settings, rows = night
    contracts = load_contracts(settings.contracts_dir)
    d = next(r for r in rows if r["status"] == "accepted" and r["rows_read"])
    a = check_file(settings.landing_dir / d["landing_path"], contracts[d["contract_id"]], settings, d["arrived_at"])
    assert (a.status, a.reason_code) == ("rejected", "duplicate")


def test_check_exit_code_is_zero_only_for_a_file_that_would_be_accepted(night, tmp_path, capsys, monkeypatch):
    settings, rows = night
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(tmp_path / "owner"))  # the data owner's machine: no warehouse
    d = next(r for r in rows if r["contract_id"] == "riverside_acute__emergency_admissions" and r["status"] == "accepted")
    src = settings.landing_dir / d["landing_path"]
    good = tmp_path / src.name
    good.write_bytes(src.read_bytes())
    when = d["arrived_at"].isoformat()
    assert main(["check", str(good), "--contract", d["contract_id"], "--arrived-at", when, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "accepted" and out["sha256"] == d["sha256"]
    lines = src.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("|")
    bad = tmp_path / "renamed" / src.name
    bad.parent.mkdir()
    bad.write_text("|".join(["admission_dt" if h == "admission_date" else h for h in header]) + "\n" + "\n".join(lines[1:]) + "\n",
                   encoding="utf-8")
    assert main(["check", str(bad), "--contract", d["contract_id"], "--arrived-at", when, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["reason_code"] == "missing_columns" and "admission_date" in out["reason"] and "admission_dt" in out["reason"]
    assert main(["check", str(bad), "--contract", d["contract_id"], "--arrived-at", "2030-01-01T00:00"]) == 1
    assert "would be rejected" in capsys.readouterr().out
