"""Contracts: every one lints clean, typos are named, timeliness and breaking changes are judged from the contract."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from orchestration.partnership.contracts.diff import compare, version_problem
from orchestration.partnership.contracts.model import (
    ContractError,
    load_contract,
    load_contracts,
)
from orchestration.partnership.contracts.timing import due_at, minutes_late
from orchestration.partnership.settings import PROJECT_ROOT

pytestmark = pytest.mark.dbt_free

AGENCIES = PROJECT_ROOT / "contracts" / "agencies"
CONTRACT_FILES = sorted(AGENCIES.glob("*/*.odcs.yaml"))
AMBULANCE = AGENCIES / "county_ambulance" / "incidents.odcs.yaml"


def test_there_is_one_contract_per_agency_extract():
    # The agencies deliver twelve extracts, one contract each (docs/contracts.md).
    assert len(load_contracts(AGENCIES)) == 12


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_contract_lints_clean_with_datacontract_cli(path):
    exe = Path(sys.executable).with_name("datacontract")
    proc = subprocess.run([str(exe), "lint", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.parametrize("path", CONTRACT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_contract_states_owner_cadence_due_time_mode_and_classifies_every_column(path):
    c = load_contract(path)
    assert c.owner_role and "@" in c.owner_email
    assert c.delivery.cadence in ("nightly", "weekly", "monthly", "termly")
    assert c.delivery.mode in ("incremental", "snapshot")
    assert c.delivery.file_date == "yyyyMMdd" and c.delivery.late in ("reject", "warn")
    assert c.row_count_min is not None and c.row_count_max is not None
    assert all(col.classification in ("direct_identifier", "quasi_identifier", "special_category", "other") for col in c.columns)
    text = path.read_text()
    assert f"value: {c.delivery.due_after_days}\n  unit: d\n  description: Due by {c.delivery.due_by} {c.delivery.timezone}" in text, \
        "slaProperties.latency must say what customProperties.delivery says"


def _with(tmp_path: Path, old: str, new: str) -> Path:
    text = AMBULANCE.read_text()
    assert old in text
    target = tmp_path / "county_ambulance" / "incidents.odcs.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text.replace(old, new, 1))
    return target


def test_a_typo_in_a_contract_extension_is_an_error_naming_the_file_and_the_key(tmp_path):
    path = _with(tmp_path, "- property: quarantineTolerance", "- property: quarantineTolerence")
    with pytest.raises(ContractError) as exc:
        load_contract(path)
    assert str(path) in str(exc.value) and "quarantineTolerence" in str(exc.value)


def test_a_typo_inside_the_delivery_extension_names_the_nested_key(tmp_path):
    path = _with(tmp_path, "    late: warn\n", "    lateness: warn\n")
    with pytest.raises(ContractError) as exc:
        load_contract(path)
    assert str(path) in str(exc.value) and "delivery" in str(exc.value) and "lateness" in str(exc.value)


def test_a_bad_late_policy_value_is_an_error(tmp_path):
    path = _with(tmp_path, "    late: warn\n", "    late: maybe\n")
    with pytest.raises(ContractError, match="late"):
        load_contract(path)


def test_late_deliveries_are_rejected_unless_the_contract_says_warn(tmp_path):
    assert load_contract(AMBULANCE).delivery.late == "warn"
    path = _with(tmp_path, "    late: warn\n", "")
    assert load_contract(path).delivery.late == "reject"


def test_the_due_time_follows_the_file_date_the_lag_and_local_time():
    c = load_contract(AMBULANCE)
    # 06:00 Europe/London on the day after the file's date: GMT in November, BST in July.
    assert due_at(c, "incidents_20261126.csv") == datetime(2026, 11, 27, 6, 0)
    assert due_at(c, "incidents_20260710.csv") == datetime(2026, 7, 11, 5, 0)
    snap = load_contract(AGENCIES / "nhs_optout" / "opt_outs.odcs.yaml")
    assert due_at(snap, "opt_outs_20261101.csv") == datetime(2026, 11, 1, 6, 0)


def test_removing_a_column_is_a_breaking_change_that_needs_a_new_major_version(tmp_path):
    old = load_contract(AMBULANCE)
    path = _with(tmp_path, "  - name: conveyed\n", "  - name: conveyed_to_hospital\n")
    new = load_contract(path)
    changes = compare(old, new)
    assert any(c.severity == "breaking" and c.where == "column conveyed" for c in changes)
    assert "major version" in version_problem(old, new, changes)


def test_widening_a_code_list_is_compatible_and_narrowing_it_breaks(tmp_path):
    old = load_contract(AMBULANCE)
    wider = load_contract(_with(tmp_path, "        - STROKE\n", "        - STROKE\n        - SEIZURE\n"))
    assert {c.severity for c in compare(old, wider)} == {"compatible"}
    narrower = load_contract(_with(tmp_path, "        - STROKE\n", ""))
    assert [c.severity for c in compare(old, narrower)] == ["breaking"]


def test_turning_late_warn_into_reject_breaks(tmp_path):
    old = load_contract(AMBULANCE)
    new = load_contract(_with(tmp_path, "    late: warn\n", "    late: reject\n"))
    assert [(c.severity, c.where) for c in compare(old, new)] == [("breaking", "delivery.late")]


def test_contracts_diff_on_the_command_line_fails_a_breaking_change_without_a_major_bump(tmp_path):
    from orchestration.partnership.cli import main

    path = _with(tmp_path, "  - name: conveyed\n", "  - name: conveyed_to_hospital\n")
    assert main(["contracts", "diff", str(path), str(AMBULANCE)]) == 1
    bumped = path.read_text().replace("version: 1.0.0", "version: 2.0.0", 1)
    path.write_text(bumped)
    assert main(["contracts", "diff", str(path), str(AMBULANCE)]) == 0


def test_contracts_and_protocols_read_with_libyaml_are_the_documents_pyyaml_reads():
    import yaml

    import orchestration.partnership.releases.protocols as protocols
    from orchestration.partnership.contracts.model import SAFE_LOADER
    from orchestration.partnership.settings import PROJECT_ROOT

    assert SAFE_LOADER is yaml.CSafeLoader  # else the faster parser is not in use
    no_dates = type("PythonNoDates", (yaml.SafeLoader,), {"yaml_implicit_resolvers": protocols._NoDatesLoader.yaml_implicit_resolvers})
    files = sorted((PROJECT_ROOT / "contracts").rglob("*.yaml"))
    assert len(files) >= 15
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=SAFE_LOADER) == yaml.safe_load(text), f
        assert yaml.load(text, Loader=protocols._NoDatesLoader) == yaml.load(text, Loader=no_dates), f
    dated = "valid_from: 2026-01-01\nn: 1\n"
    assert yaml.load(dated, Loader=protocols._NoDatesLoader) == {"valid_from": "2026-01-01", "n": 1}


def test_lateness_counts_from_the_file_date_plus_the_lag_never_from_the_day_of_arrival():
    c = load_contract(AMBULANCE)  # due 06:00 London, one day after the file's date
    assert minutes_late(c, "incidents_20261126.csv", datetime(2026, 11, 27, 5, 59)) is None
    assert minutes_late(c, "incidents_20261126.csv", datetime(2026, 11, 27, 7, 42)) == 102
    # A week late, though before 06:00 on the day it arrived.
    assert minutes_late(c, "incidents_20261120.csv", datetime(2026, 11, 27, 1, 30)) == 6 * 24 * 60 - 270
    # Early for its date, though after 06:00 on the day it arrived.
    assert minutes_late(c, "incidents_20261127.csv", datetime(2026, 11, 27, 9, 0)) is None


def test_a_file_refused_before_its_time_was_judged_is_never_late():
    c = load_contract(AMBULANCE)
    assert minutes_late(c, "incidents.csv", datetime(2026, 11, 27, 9, 0)) is None  # no date: rejected for its name
    assert minutes_late(c, "incidents_20261120.csv", datetime(2026, 11, 27, 9, 0), "symlink") is None
    assert minutes_late(c, "incidents_20261120.csv", datetime(2026, 11, 27, 9, 0), "encoding") is not None
