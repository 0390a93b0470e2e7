"""Every contract rule kind has a fixture that breaks it, and the right reason lands on the right rows.

The generator's planted violations cover required, pattern, allowed_values, date_parse, range,
cross_field, unique and nhs_number_check_digit; these cover the rest: length, type (integer,
number, boolean), upn_check_letter, a composite key's unique, and the file-level kinds. Each
fixture is a real generated delivery (cleaned of planted violations) with one thing broken,
judged by the engine the night and `partnership check` share."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.demo import generate
from orchestration.partnership.settings import PROJECT_ROOT
from orchestration.partnership.validation.engine import assess
from orchestration.partnership.validation.rows import _UPN_LETTERS
from orchestration.partnership.warehouse.files import sha256_file
from tests.conftest import DEMO_AS_OF
from tests.hostile.corpus import (
    AGEWELL,
    AMB,
    OPTOUT,
    SCHOOL,
    CsvSource,
    _workbook,
    _xlsx_rows,
)

pytestmark = pytest.mark.dbt_free

CONTRACTS = load_contracts(PROJECT_ROOT / "contracts" / "agencies")
ON_TIME = {"county_ambulance__incidents": datetime(2026, 11, 27, 1, 30), "county_council__school_attendance": datetime(2026, 7, 23, 1, 30),
           "nhs_optout__opt_outs": datetime(2026, 11, 1, 1, 30), "riverside_council__housing_adaptations": datetime(2026, 11, 23, 1, 30),
           "riverside_agewell__falls_class_referrals": datetime(2026, 11, 1, 1, 30)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("rule-kinds")
    generate(data_dir, preset="small", seed=42, as_of=DEMO_AS_OF)
    landing, truth = data_dir / "landing", data_dir / "demo_truth"
    return {"landing": landing, "truth": truth,
            "amb": CsvSource(landing, truth, AMB, ",", "utf-8", False),
            "school": CsvSource(landing, truth, SCHOOL, ",", "utf-8", True, limit=40),
            "optout": CsvSource(landing, truth, OPTOUT, ",", "utf-8", False)}


def _judge(tmp_path: Path, contract_id: str, name: str, data: bytes, arrived: datetime | None = None, duplicate_of=None):
    path = tmp_path / name
    path.write_bytes(data)
    c = CONTRACTS[contract_id]
    return assess(path, c, file_name=name, sha256=sha256_file(path), arrived_at=arrived or ON_TIME[contract_id],
                  duplicate_of=duplicate_of)


def _quarantined(a) -> dict[int, set[str]]:
    return {r: set(rules) for r, rules in a.rows.quarantine.select("_row_number", "_rules").iter_rows()}


def _row_rule(a, rule: str):
    return next(r for r in a.rules if r.rule == rule)


# --- row rules -------------------------------------------------------------------------------

def test_a_value_over_its_maximum_length_breaks_the_length_rule_on_its_row(demo, tmp_path):
    a = _judge(tmp_path, "county_ambulance__incidents", "incidents_20261126.csv",
               demo["amb"].with_values({(2, "surname"): "S" * 101}))
    assert a.accepted and _quarantined(a) == {2: {"surname:length"}}
    r = _row_rule(a, "surname:length")
    assert (r.passed, r.failing_rows, [e["row"] for e in r.examples]) == (False, 1, [2])
    assert r.examples[0]["values"]["surname"] == "A" * 40, "an identifying value shows its shape only, cut to 40"


@pytest.mark.parametrize("value", ["12.5", "ten", "1e3"])
def test_an_integer_that_does_not_parse_breaks_the_type_rule(demo, tmp_path, value):
    a = _judge(tmp_path, "county_council__school_attendance", "school_attendance_20260722.csv",
               demo["school"].with_values({(3, "possible_sessions"): value}))
    assert a.accepted and _quarantined(a) == {3: {"possible_sessions:type"}}


def test_a_number_that_does_not_parse_breaks_the_type_rule(demo, tmp_path):
    title, header, rows = _xlsx_rows(demo["landing"], demo["truth"])
    rows = [list(r) for r in rows]
    rows[4][header.index("grant_amount")] = "£1,200"
    a = _judge(tmp_path, "riverside_council__housing_adaptations", "housing_adaptations_20261123.xlsx",
               _workbook(title, header, rows))
    assert a.accepted and _quarantined(a) == {5: {"grant_amount:type"}}


def test_a_boolean_that_does_not_parse_breaks_the_type_rule(demo, tmp_path):
    agency, extract, name = AGEWELL
    df = pl.read_parquet(demo["landing"] / agency / extract / name)
    df = df.with_columns(pl.col("consent_to_share").cast(pl.Utf8))
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == 6).then(pl.lit("maybe")).otherwise(pl.col("consent_to_share"))
                         .alias("consent_to_share"))
    buf = io.BytesIO()
    df.write_parquet(buf)
    a = _judge(tmp_path, "riverside_agewell__falls_class_referrals", name, buf.getvalue())
    assert a.accepted and {7: {"consent_to_share:type"}}.items() <= _quarantined(a).items()
    assert [r for r, rules in _quarantined(a).items() if "consent_to_share:type" in rules] == [7]


def test_a_upn_with_the_wrong_check_letter_breaks_upn_check_letter(demo, tmp_path):
    school = demo["school"]
    upn = school.rows[1][school.col("upn")]
    wrong = _UPN_LETTERS[(_UPN_LETTERS.index(upn[0]) + 1) % len(_UPN_LETTERS)] + upn[1:]
    rows = school.copy_rows()
    for r in rows:  # every term row of that pupil
        if r[school.col("upn")] == upn:
            r[school.col("upn")] = wrong
    broken = [i for i, r in enumerate(rows, start=1) if r[school.col("upn")] == wrong]
    a = _judge(tmp_path, "county_council__school_attendance", "school_attendance_20260722.csv", school.bytes(rows=rows))
    assert a.accepted and _quarantined(a) == {i: {"upn:upn_check_letter"} for i in broken}
    assert "upn:upn_check_letter" in [r.rule for r in a.rules]
    example = _row_rule(a, "upn:upn_check_letter").examples[0]["values"]["upn"]
    assert example == "A999999999999", "a direct identifier shows its shape only"


def test_a_repeated_composite_key_quarantines_every_copy_under_the_composite_rule(demo, tmp_path):
    school = demo["school"]
    rows = school.copy_rows()
    copy = list(rows[0])
    copy[school.col("attended_sessions")] = "1"  # same key, other values
    rows.append(copy)
    a = _judge(tmp_path, "county_council__school_attendance", "school_attendance_20260722.csv", school.bytes(rows=rows))
    rule = "upn+academic_year+term:unique"
    assert a.accepted and _quarantined(a) == {1: {rule}, len(rows): {rule}}
    assert _row_rule(a, rule).failing_rows == 2


# --- file-level rules ------------------------------------------------------------------------

@pytest.mark.parametrize("mutate,code,fragment", [
    (lambda s: s.text().encode("cp1252").replace(b"\n", b"\n\xff", 1), "encoding", "not valid utf-8"),
    (lambda s: "\ufeff".encode() + s.text().encode(), "encoding", "byte-order mark"),
    (lambda s: b"", "empty", "empty"),
    (lambda s: s.bytes(header=s.header + ["extra"], rows=[r + ["x"] for r in s.rows]), "extra_columns", "extra"),
    (lambda s: s.bytes(header=s.header[:-1], rows=[r[:-1] for r in s.rows]), "missing_columns", "conveyed"),
    (lambda s: s.bytes(header=["chief_complaint_code" if h == "chief_complaint" else h for h in s.header]),
     "missing_columns", "chief_complaint_code"),
], ids=["bad_bytes", "bom", "empty", "extra_column", "missing_column", "renamed_column"])
def test_file_level_kinds_reject_the_whole_delivery_with_a_reason_naming_the_file(demo, tmp_path, mutate, code, fragment):
    a = _judge(tmp_path, "county_ambulance__incidents", "incidents_20261126.csv", mutate(demo["amb"]))
    assert (a.status, a.reason_code) == ("rejected", code)
    assert a.reason.startswith("incidents_20261126.csv: ") and fragment in a.reason
    assert a.rows is None and a.rows_read == 0


def test_a_header_only_file_is_accepted_when_the_row_count_allows_none_and_rejected_when_it_does_not(demo, tmp_path):
    a = _judge(tmp_path, "county_ambulance__incidents", "incidents_20261126.csv", demo["amb"].bytes(rows=[]))
    assert a.accepted and a.rows_read == 0
    b = _judge(tmp_path, "nhs_optout__opt_outs", "opt_outs_20261101.csv", demo["optout"].bytes(rows=[]))
    assert (b.status, b.reason_code) == ("rejected", "row_count")
    assert "opt_outs_20261101.csv" in b.reason and "0 rows" in b.reason and "1 to 5000000" in b.reason


def test_a_duplicate_of_an_accepted_delivery_is_rejected(demo, tmp_path):
    a = _judge(tmp_path, "county_ambulance__incidents", "incidents_20261126.csv", demo["amb"].bytes(), duplicate_of=7)
    assert (a.status, a.reason_code) == ("rejected", "duplicate") and "identical to delivery 7" in a.reason


def test_late_rejects_or_warns_as_the_contract_says(demo, tmp_path):
    late = _judge(tmp_path, "county_council__school_attendance", "school_attendance_20260722.csv", demo["school"].bytes(),
                  arrived=datetime(2026, 7, 23, 9, 0))
    assert (late.status, late.reason_code) == ("rejected", "late") and "due by 2026-07-23 05:00 UTC" in late.reason
    warned = _judge(tmp_path, "county_ambulance__incidents", "incidents_20261126.csv", demo["amb"].bytes(),
                    arrived=datetime(2026, 11, 27, 9, 0))
    assert warned.accepted and warned.late and any(w.startswith("late") for w in warned.warnings)


def test_an_unreadable_workbook_and_a_workbook_with_two_sheets_are_rejected(demo, tmp_path):
    title, header, rows = _xlsx_rows(demo["landing"], demo["truth"])
    good = _workbook(title, header, rows)
    a = _judge(tmp_path, "riverside_council__housing_adaptations", "housing_adaptations_20261123.xlsx", good[:-300])
    assert (a.status, a.reason_code) == ("rejected", "unreadable") and "housing_adaptations_20261123.xlsx" in a.reason
    b = _judge(tmp_path, "riverside_council__housing_adaptations", "housing_adaptations_20261123.xlsx",
               _workbook(title, header, rows, lambda wb, ws, h: wb.create_sheet("Lookup")))
    assert (b.status, b.reason_code) == ("rejected", "sheet") and "2 sheets" in b.reason
