"""Every hostile or broken delivery meets the outcome its contract says, with a clear reason,
nothing lost, nothing leaking, and every other delivery of the night processed all the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestration.partnership.ingest.reports import report_stem
from orchestration.partnership.warehouse.files import sha256_file
from tests.hostile.conftest import IN_PROGRESS

pytestmark = pytest.mark.dbt_free

TRACE = re.compile(r"Traceback|File \"|line \d+, in |Error\(|\w+Error:|\w+Exception")
TABLE_SCHEMAS = ("raw", "quarantine", "valid", "identity")


def _ids():
    # The case ids, without building the corpus at collection time (it needs a generated demo).
    src = Path(__file__).with_name("corpus.py").read_text()
    return re.findall(r'(?:add|xl)\("([a-z0-9_]+)"', src) + re.findall(r'Case\("([a-z0-9_]+)"', src)


CASES = _ids()


def test_the_corpus_has_at_least_forty_cases(hostile):
    assert len(hostile.cases) >= 40
    assert sorted(hostile.cases) == sorted(CASES)


def _rows(con, schema: str, table: str, delivery_id: int) -> int:
    exists = con.execute("select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                         [schema, table]).fetchall()[0][0]
    if not exists:
        return 0
    return con.execute(f'select count(*) from {schema}."{table}" where _delivery_id = ?', [delivery_id]).fetchall()[0][0]


@pytest.mark.parametrize("case_id", CASES)
def test_each_case_meets_its_contract_with_a_clear_reason_and_nothing_lost(hostile, case_id):
    case = hostile.cases[case_id]
    d = hostile.delivery(case)
    contract_id = f"{case.source[0]}__{case.source[1]}"
    with hostile.con() as con:
        counts = {s: _rows(con, s, contract_id, d["delivery_id"]) for s in TABLE_SCHEMAS}
        quarantine = {}
        if counts["quarantine"]:
            quarantine = {r: set(rules) for r, rules in con.execute(
                f'select _row_number, _rules from quarantine."{contract_id}" where _delivery_id = ?', [d["delivery_id"]]).fetchall()}
    if case.outcome == "rejected":
        assert (d["status"], d["reason_code"]) == ("rejected", case.code), d["reason"]
        shown = case.file_name.encode("unicode_escape").decode() if not case.file_name.isprintable() else case.file_name
        assert shown in d["reason"], "the reason names the file"
        for fragment in case.says:
            assert fragment in d["reason"], (fragment, d["reason"])
        for fragment in case.never_says:
            assert fragment not in d["reason"], fragment
        assert not TRACE.search(d["reason"]), d["reason"]
        # Nothing from a rejected file is loaded anywhere; the file itself is kept.
        assert counts == dict.fromkeys(TABLE_SCHEMAS, 0)
        assert d["rows_read"] is None and d["rows_valid"] is None
        if case.at_registration:
            assert d["archive_path"] is None
            path = hostile.settings.landing_dir / case.rel
            assert path.is_symlink() or not path.is_file() or sha256_file(path) == d["sha256"]
        else:
            archived = Path(d["archive_path"])
            assert archived.is_relative_to(hostile.settings.archive_dir)
            assert sha256_file(archived) == d["sha256"] == sha256_file(hostile.settings.landing_dir / case.rel)
    else:
        assert d["status"] == "accepted", d["reason"]
        assert d["rows_read"] == case.rows
        assert d["rows_read"] == d["rows_valid"] + d["rows_quarantined"]
        assert counts["raw"] == d["rows_read"] and counts["valid"] == d["rows_valid"]
        assert counts["quarantine"] == d["rows_quarantined"]
        assert quarantine == case.quarantined, "exactly the broken rows, with exactly the rules they break"
        assert json.loads(d["rule_counts"]) == _rule_counts(case.quarantined)
        if case.stored:
            _values_kept_as_data(hostile, contract_id, d["delivery_id"], case.stored)


def _rule_counts(quarantined: dict[int, set[str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rules in quarantined.values():
        for r in rules:
            out[r] = out.get(r, 0) + 1
    return out


def _values_kept_as_data(hostile, contract_id: str, delivery_id: int, stored: dict):
    with hostile.con() as con:
        for (row, column), value in stored.items():
            schema = "identity" if column in ("forename", "surname", "address_line") else "valid"
            got = con.execute(f'select "{column}" from {schema}."{contract_id}" where _delivery_id = ? and _row_number = ?',
                              [delivery_id, row]).fetchall()
            assert got == [(value,)], (row, column)


@pytest.mark.parametrize("case_id", CASES)
def test_what_the_data_owner_sees_has_no_stack_trace_and_no_unmasked_identifier(hostile, case_id):
    case = hostile.cases[case_id]
    d = hostile.delivery(case)
    if case.at_registration:
        return _registration_is_listed_for_its_agency(hostile, case, d)
    folder = hostile.settings.reports_dir / "contracts" / case.source[0]
    stem = report_stem(d["delivery_id"], d["file_name"])
    page = (folder / f"{stem}.html").read_text(encoding="utf-8")
    doc = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
    assert doc["status"] == d["status"] and doc["reason_code"] == d["reason_code"]
    assert not TRACE.search(page) and not TRACE.search(json.dumps(doc))
    assert len(page) < 200_000, "a huge value is cut, not copied into the report"
    for (row, column), value in case.stored.items():
        assert value not in page, "identifying values are masked in reports"
    if case.outcome == "quarantined":
        for row, rules in case.quarantined.items():
            for rule in rules:
                r = next(x for x in doc["rules"] if x["rule"] == rule)
                assert not r["passed"] and row in [e["row"] for e in r["examples"]] + ([row] if r["failing_rows"] > 3 else [])
    for script in ("<script", "javascript:"):
        assert script not in page.lower()


def _registration_is_listed_for_its_agency(hostile, case, d):
    if d["contract_id"] is None:
        return  # no agency contract: it belongs to no data owner (operators see ops.deliveries)
    index = (hostile.settings.reports_dir / "contracts" / case.source[0] / "index.json").read_text(encoding="utf-8")
    assert not TRACE.search(index)
    listed = {x["delivery_id"]: x for x in json.loads(index)["deliveries"]}
    assert listed[d["delivery_id"]]["status"] == "rejected"


def test_every_demo_delivery_is_processed_all_the_same(hostile):
    for rel in hostile.demo_files:
        d = hostile.deliveries[rel]
        assert d["status"] == "accepted", (rel, d["reason"])
        assert d["rows_read"] == d["rows_valid"] + d["rows_quarantined"]


def test_rows_read_equal_valid_plus_quarantined_for_every_accepted_delivery_of_the_night(hostile):
    with hostile.con() as con:
        bad = con.execute("""select file_name from ops.deliveries where status = 'accepted'
                             and rows_read <> rows_valid + rows_quarantined""").fetchall()
        assert bad == []
        assert con.execute("select count(*) from ops.deliveries where status = 'registered'").fetchall() == [(0,)]


def test_a_file_that_arrives_while_the_run_is_in_progress_waits_for_the_next_run(hostile):
    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.ingest.night import (
        check_key,
        process_extract,
        register_deliveries,
    )

    assert IN_PROGRESS not in hostile.deliveries, "not registered by the run it arrived during"
    assert not any(p.endswith(".part") for p in hostile.deliveries), "a file still being written is left alone"
    settings = hostile.settings
    contracts = load_contracts(settings.contracts_dir)
    new = register_deliveries(settings, contracts)
    assert len(new) == 1
    outcome = process_extract(settings, contracts["county_police__incidents"], check_key(settings))
    assert (outcome.accepted, outcome.rejected) == (1, 0)
    assert register_deliveries(settings, contracts) == [], "nothing is registered twice"


def test_a_symlink_is_never_followed(hostile):
    secret = hostile.outside / "secret.csv"
    digest = sha256_file(secret)
    assert not list(hostile.settings.archive_dir.rglob(f"{digest}*"))
    with hostile.con() as con:
        assert con.execute("select count(*) from raw.county_ambulance__incidents where incident_id = 'OUTSIDE-SECRET'").fetchall() == [(0,)]


def test_sql_in_values_and_column_names_is_only_ever_data(hostile):
    with hostile.con() as con:
        tables = {r[0] for r in con.execute("select schema_name || '.' || table_name from duckdb_tables()").fetchall()}
        assert {"raw.county_ambulance__incidents", "valid.county_ambulance__incidents", "ops.deliveries"} <= tables
        n = con.execute("select count(*) from valid.county_ambulance__incidents").fetchall()[0][0]
        assert n > 0


def test_nothing_was_written_outside_the_data_folder(hostile):
    written = [p for p in hostile.outside.rglob("*") if p.is_file()]
    assert sorted(p.name for p in written) == ["incidents_20261126.csv", "secret.csv"]
    assert not (hostile.settings.data_dir.parent / "etc_20261126.csv").exists()
