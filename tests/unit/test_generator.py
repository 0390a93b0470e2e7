"""The demo partnership generator: formats, determinism, truth consistency (small preset)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from orchestration.partnership.demo import PRESETS, generate
from orchestration.partnership.demo.ids import is_valid_nhs, is_valid_upn

pytestmark = pytest.mark.dbt_free

AS_OF = date(2026, 11, 27)

HEADERS = {
    ("riverside_acute", "emergency_admissions"): [
        "episode_id", "spell_id", "episode_number", "nhs_number", "forename", "surname", "date_of_birth", "sex",
        "postcode", "address_line", "admission_date", "episode_start_date", "discharge_date", "admission_method",
        "primary_diagnosis", "secondary_diagnosis_1", "secondary_diagnosis_2", "secondary_diagnosis_3",
        "secondary_diagnosis_4"],
    ("riverside_acute", "ae_attendances"): [
        "attendance_id", "nhs_number", "forename", "surname", "date_of_birth", "sex", "postcode",
        "address_line", "arrival_datetime", "departure_datetime", "primary_diagnosis", "secondary_diagnosis", "disposal"],
    ("county_ambulance", "incidents"): [
        "incident_id", "incident_datetime", "nhs_number", "forename", "surname", "date_of_birth", "sex",
        "postcode", "chief_complaint", "conveyed"],
    ("riverside_fire", "safe_and_well_visits"): [
        "visit_id", "uprn", "forename", "surname", "date_of_birth", "visit_date", "referral_source",
        "falls_risk_identified", "smoke_alarm_fitted"],
    ("riverside_council", "housing_adaptations"): [
        "case_ref", "uprn", "forename", "surname", "date_of_birth", "postcode", "referral_date", "approval_date",
        "completion_date", "grant_amount", "adaptation_type"],
    ("riverside_council", "homelessness_cases"): [
        "case_ref", "uprn", "forename", "surname", "date_of_birth", "postcode", "address_line", "approach_date", "duty_type",
        "household_type", "children_in_household", "case_status"],
    ("county_council", "adult_social_care_referrals"): [
        "referral_id", "nhs_number", "forename", "surname", "date_of_birth", "sex", "postcode",
        "address_line", "referral_datetime", "referral_source", "primary_support_reason", "decision_datetime", "outcome"],
    ("county_council", "children_social_care_referrals"): [
        "referral_id", "child_id", "upn", "forename", "surname", "date_of_birth", "sex", "postcode", "address_line",
        "uprn", "referral_datetime", "referral_source", "decision_datetime", "decision"],
    ("county_council", "school_attendance"): [
        "upn", "forename", "surname", "date_of_birth", "sex", "postcode", "address_line", "school_urn", "academic_year",
        "term", "census_date", "possible_sessions", "attended_sessions"],
    ("county_police", "incidents"): [
        "occurrence_id", "nominal_id", "person_role", "occurrence_type", "occurrence_datetime", "forename",
        "surname", "date_of_birth", "postcode", "address_line"],
    ("riverside_agewell", "falls_class_referrals"): [
        "referral_id", "forename", "surname", "date_of_birth", "postcode", "referral_date", "first_class_date",
        "classes_attended", "referral_source", "consent_to_share"],
    ("nhs_optout", "opt_outs"): ["nhs_number"],
}
CSV_HABITS = {  # (delimiter, encoding, bom, line ending)
    ("riverside_acute", "emergency_admissions"): ("|", "utf-8", False, b"\n"),
    ("riverside_acute", "ae_attendances"): ("|", "utf-8", False, b"\n"),
    ("county_ambulance", "incidents"): (",", "utf-8", False, b"\n"),
    ("riverside_fire", "safe_and_well_visits"): (",", "cp1252", False, b"\r\n"),
    ("county_council", "adult_social_care_referrals"): (",", "utf-8", True, b"\n"),
    ("county_council", "children_social_care_referrals"): (",", "utf-8", True, b"\n"),
    ("county_council", "school_attendance"): (",", "utf-8", True, b"\n"),
    ("county_police", "incidents"): (",", "cp1252", False, b"\n"),
    ("nhs_optout", "opt_outs"): (",", "utf-8", False, b"\n"),
}
NHS_EXTRACTS = [("riverside_acute", "emergency_admissions"), ("riverside_acute", "ae_attendances"),
                ("county_ambulance", "incidents"), ("county_council", "adult_social_care_referrals"),
                ("nhs_optout", "opt_outs")]


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> tuple[Path, dict]:
    d = tmp_path_factory.mktemp("demo")
    return d, generate(d, preset="small", seed=42, as_of=AS_OF)


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_rows(path: Path, key) -> tuple[list[str], list[dict]]:
    """Header and rows (all values as strings, None for blank) of any delivered file."""
    if path.suffix == ".csv":
        sep, enc, bom, _ = CSV_HABITS[key]
        text = path.read_bytes().decode("utf-8-sig" if bom else enc)
        rdr = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        header = next(rdr)
        rows = [{h: (v if v != "" else None) for h, v in zip(header, r)} for r in rdr]
        return header, rows
    if path.suffix == ".xlsx":
        wb = load_workbook(path, read_only=True)
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        next(it)  # title
        header = list(next(it))
        rows = [dict(zip(header, r)) for r in it]
        return header, rows
    t = pq.read_table(path)
    return t.column_names, t.to_pylist()


def files_of(root: Path, key) -> list[Path]:
    return sorted((root / "landing" / key[0] / key[1]).iterdir())


def test_presets():
    assert {"small", "district", "county"} <= set(PRESETS)
    assert PRESETS["district"].wards == 12


def test_determinism_and_seed_sensitivity(gen, tmp_path):
    root, _ = gen
    again = tmp_path / "again"
    generate(again, preset="small", seed=42, as_of=AS_OF)
    assert _hashes(root) == _hashes(again)
    for p in (root / "landing").rglob("*.*"):
        q = again / p.relative_to(root)
        assert os.stat(p).st_mtime == os.stat(q).st_mtime
    other = tmp_path / "other"
    generate(other, preset="small", seed=7, as_of=AS_OF)
    a, b = _hashes(root), _hashes(other)
    landing = [k for k in a if k.startswith("landing") and k in b]
    assert landing and all(a[k] != b[k] for k in landing if "history" in k or "snapshot" in k or k.endswith(("xlsx", "parquet")))
    assert sum(a[k] != b[k] for k in landing) >= 0.8 * len(landing)  # tiny nightly files may coincide
    assert a["reference/population_estimates.csv"] != b["reference/population_estimates.csv"]


def test_every_extract_present_with_exact_header(gen):
    root, _ = gen
    for key, header in HEADERS.items():
        fs = files_of(root, key)
        assert len(fs) >= 2, key
        for f in fs:
            got, _ = read_rows(f, key)
            assert got == header, (key, f.name)


def test_delivery_file_names_and_mtimes(gen):
    root, _ = gen
    acute = [f.name for f in files_of(root, ("riverside_acute", "emergency_admissions"))]
    assert acute == ["emergency_admissions_20261125.csv", "emergency_admissions_20261126.csv",
                     "emergency_admissions_history_20241128_20261124.csv"]
    f = root / "landing/riverside_acute/emergency_admissions/emergency_admissions_20261126.csv"
    assert datetime.fromtimestamp(os.stat(f).st_mtime, timezone.utc) == datetime(2026, 11, 27, 1, 30, tzinfo=timezone.utc)
    dl = pl.read_parquet(root / "demo_truth/deliveries.parquet")
    late = dl.filter(pl.col("planted_late"))
    assert late.height == 1
    lr = late.row(0, named=True)
    lf = root / "landing" / lr["agency"] / lr["extract"] / lr["file_name"]
    arr = datetime.fromtimestamp(os.stat(lf).st_mtime, timezone.utc)
    assert arr.hour >= 6 and arr.date() == AS_OF
    assert dl.filter(~pl.col("planted_late")).height == dl.height - 1
    # every delivered file is in deliveries with its row count
    for r in dl.iter_rows(named=True):
        p = root / "landing" / r["agency"] / r["extract"] / r["file_name"]
        assert p.exists()
    for suffix in ("xlsx", "parquet"):
        assert list((root / "landing").rglob(f"*.{suffix}"))


def test_csv_habits(gen):
    root, _ = gen
    for key, (sep, enc, bom, eol) in CSV_HABITS.items():
        for f in files_of(root, key):
            raw = f.read_bytes()
            assert raw.startswith(b"\xef\xbb\xbf") == bom, f
            first_line = raw.split(b"\n", 1)[0] + b"\n"
            assert first_line.endswith(eol), f
            if eol == b"\n":
                assert b"\r\n" not in raw
            raw.decode(enc)  # decodes cleanly
            if key in HEADERS and len(HEADERS[key]) > 1:
                assert sep in raw.decode(enc).splitlines()[0]
    fire = b"".join(f.read_bytes() for f in files_of(root, ("riverside_fire", "safe_and_well_visits")))
    text = fire.decode("cp1252")
    assert "’" in text and "'" in text and "ë" in text or "é" in text
    with pytest.raises(UnicodeDecodeError):
        fire.decode("utf-8")
    acute = files_of(root, ("riverside_acute", "emergency_admissions"))[-1].read_text("utf-8")
    assert acute.splitlines()[0].count("|") == 18
    assert '""' not in acute


def test_datetime_formats(gen):
    root, _ = gen
    import re
    checks = {
        ("riverside_acute", "ae_attendances"): ("arrival_datetime", r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"),
        ("county_ambulance", "incidents"): ("incident_datetime", r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$"),
        ("county_council", "adult_social_care_referrals"): ("referral_datetime", r"^\d{4}-\d\d-\d\d \d\d:\d\d$"),
        ("county_police", "incidents"): ("occurrence_datetime", r"^\d\d/\d\d/\d{4} \d\d:\d\d$"),
        ("riverside_fire", "safe_and_well_visits"): ("visit_date", r"^\d\d/\d\d/\d{4}$"),
        ("riverside_acute", "emergency_admissions"): ("admission_date", r"^\d{4}-\d\d-\d\d$"),
    }
    recs = pl.read_parquet(root / "demo_truth/records.parquet")
    for key, (col, rx) in checks.items():
        f = files_of(root, key)[-1]
        _, rows = read_rows(f, key)
        tagged = set(recs.filter((pl.col("agency") == key[0]) & (pl.col("file_name") == f.name) & (pl.col("violations").list.len() > 0))["row_number"].to_list())
        for i, r in enumerate(rows, 1):
            if i not in tagged:
                assert re.match(rx, r[col]), (key, r[col])


def test_xlsx_title_header_and_date_cells(gen):
    root, _ = gen
    for key in [("riverside_council", "housing_adaptations"), ("riverside_council", "homelessness_cases")]:
        f = files_of(root, key)[-1]
        wb = load_workbook(f, read_only=True)
        assert len(wb.worksheets) == 1
        rows = list(wb.worksheets[0].iter_rows(values_only=True))
        assert "Riverside District Council" in rows[0][0] and "snapshot 2026-11-23" in rows[0][0]
        assert list(rows[1]) == HEADERS[key]
        dcol = HEADERS[key].index("referral_date" if "referral_date" in HEADERS[key] else "approach_date")
        kinds = {type(r[dcol]) for r in rows[2:]}
        assert datetime in kinds  # real Excel date cells (openpyxl reads them as datetime)


def test_parquet_schema(gen):
    root, _ = gen
    import pyarrow as pa
    f = files_of(root, ("riverside_agewell", "falls_class_referrals"))[-1]
    sch = pq.read_schema(f)
    assert sch.names == HEADERS[("riverside_agewell", "falls_class_referrals")]
    assert sch.field("referral_date").type == pa.date32()
    assert sch.field("first_class_date").type == pa.date32()
    assert sch.field("date_of_birth").type == pa.date32()
    assert sch.field("consent_to_share").type == pa.bool_()
    assert sch.field("classes_attended").type == pa.int64()
    t = pq.read_table(f).to_pydict()
    c = t["consent_to_share"]
    assert 0.75 < sum(1 for v in c if v is True) / len(c) < 0.95
    assert any(v is None for v in c) and any(v is False for v in c)


def test_reference_data(gen):
    root, _ = gen
    ref = root / "reference"
    wards = pl.read_csv(ref / "geography_wards.csv")
    assert wards.columns == ["ward_code", "ward_name", "district_code", "district_name"]
    assert wards["ward_code"].to_list() == [f"E059{i:05d}" for i in range(1, 13)]
    lsoas = pl.read_csv(ref / "geography_lsoas.csv")
    assert lsoas.columns == ["lsoa_code", "lsoa_name", "ward_code"] and lsoas["lsoa_code"].n_unique() == lsoas.height
    assert 60 <= lsoas.height <= 90
    pcs = pl.read_csv(ref / "geography_postcodes.csv")
    assert pcs.columns == ["postcode", "lsoa_code", "ward_code"]
    assert pcs["postcode"].str.contains(r"^RV\d{1,2} \d[A-Z]{2}$").all()
    assert pcs.join(lsoas, on="lsoa_code").filter(pl.col("ward_code") != pl.col("ward_code_right")).height == 0
    al = pl.read_csv(ref / "address_lookup.csv", schema_overrides={"uprn": pl.Utf8})
    assert al.columns == ["uprn", "address_line", "postcode", "lsoa_code", "ward_code"]
    assert al["uprn"].str.contains(r"^\d{12}$").all() and al["uprn"].n_unique() == al.height
    pe = pl.read_csv(ref / "population_estimates.csv")
    assert pe.columns == ["year", "ward_code", "sex", "age", "population"]
    assert sorted(pe["year"].unique().to_list()) == [2024, 2025, 2026]
    assert pe["age"].min() == 0 and pe["age"].max() == 90


def test_population_estimates_match_people(gen):
    root, _ = gen
    pe = pl.read_csv(root / "reference/population_estimates.csv")
    people = pl.read_parquet(root / "demo_truth/people.parquet")
    res = pl.read_parquet(root / "demo_truth/residence.parquet")
    for y in (2024, 2025, 2026):
        d = date(y, 6, 30)
        cur = res.filter(pl.col("ward_code").is_not_null() & (pl.col("valid_from") <= d)
                         & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= d))).join(people, on="person_id")
        cur = cur.filter(pl.col("date_of_birth") <= d).with_columns(
            (pl.lit(y) - pl.col("date_of_birth").dt.year()
             - ((pl.col("date_of_birth").dt.month() > 6) | ((pl.col("date_of_birth").dt.month() == 6) & (pl.col("date_of_birth").dt.day() > 30))).cast(pl.Int32)
             ).clip(0, 90).alias("age"))
        mine = cur.group_by("ward_code", "sex", "age").agg(pl.len().alias("n"))
        theirs = pe.filter((pl.col("year") == y) & (pl.col("population") > 0))
        j = theirs.join(mine.with_columns(pl.col("age").cast(pl.Int64)), on=["ward_code", "sex", "age"], how="full", coalesce=True)
        assert j.filter(pl.col("n").fill_null(0) != pl.col("population").fill_null(0)).height == 0, y
        tot = theirs["population"].sum()
        old = theirs.filter(pl.col("age") >= 65)["population"].sum()
        assert 10_000 < tot < 14_000 and 0.22 < old / tot < 0.32


def test_records_match_files(gen):
    root, _ = gen
    recs = pl.read_parquet(root / "demo_truth/records.parquet")
    assert recs.columns[:7] == ["agency", "extract", "file_name", "row_number", "record_id", "person_id", "violations"] or \
        set(["agency", "extract", "file_name", "row_number", "record_id", "person_id", "violations"]) <= set(recs.columns)
    for key in HEADERS:
        for f in files_of(root, key):
            _, rows = read_rows(f, key)
            r = recs.filter((pl.col("agency") == key[0]) & (pl.col("extract") == key[1]) & (pl.col("file_name") == f.name))
            assert r.height == len(rows), f
            assert r["row_number"].to_list() == list(range(1, len(rows) + 1))
            if len(HEADERS[key]) > 1 and key[1] not in ("school_attendance", "incidents") and rows:
                kcol = HEADERS[key][0]
                written = [None if row[kcol] is None else str(row[kcol]) for row in rows]
                assert written == r["record_id"].to_list(), f
    assert recs["person_id"].null_count() == 0


def test_incremental_events_in_exactly_one_file(gen):
    root, _ = gen
    recs = pl.read_parquet(root / "demo_truth/records.parquet")
    for key in [("riverside_acute", "emergency_admissions"), ("riverside_acute", "ae_attendances"),
                ("county_ambulance", "incidents"), ("riverside_fire", "safe_and_well_visits"),
                ("county_police", "incidents"), ("county_council", "children_social_care_referrals")]:
        r = recs.filter((pl.col("agency") == key[0]) & (pl.col("extract") == key[1]))
        assert r["true_record_id"].n_unique() == r.height, key


def test_violation_rate_and_kinds(gen):
    root, _ = gen
    recs = pl.read_parquet(root / "demo_truth/records.parquet")
    allowed = {"required", "nhs_number_check_digit", "pattern", "allowed_values", "date_parse", "range",
               "cross_field", "unique"}
    kinds = set(recs["violations"].explode().drop_nulls().to_list())
    assert kinds == allowed
    bad = recs.filter(pl.col("violations").list.len() > 0)
    rate = bad.height / recs.height
    assert 0.012 < rate < 0.03
    assert recs.filter(pl.col("extract") == "opt_outs")["violations"].list.len().sum() == 0
    big = recs.group_by("agency", "extract").agg(pl.len().alias("n"), (pl.col("violations").list.len() > 0).mean().alias("r"))
    for row in big.filter(pl.col("n") > 2000).iter_rows(named=True):
        assert 0.01 < row["r"] < 0.035, row
    # unique violations come in pairs sharing a key within a file
    u = recs.filter(pl.col("violations").list.contains("unique"))
    assert u.height >= 2
    assert u.group_by("agency", "file_name", "record_id").len()["len"].min() >= 2


def test_violations_zero_rate(tmp_path):
    d = tmp_path / "clean"
    generate(d, preset="small", seed=3, violation_rate=0.0, nightly_days=1)
    recs = pl.read_parquet(d / "demo_truth/records.parquet")
    assert recs["violations"].list.len().sum() == 0
    assert len(list((d / "landing/riverside_acute/emergency_admissions").iterdir())) == 2


def test_nhs_numbers_valid_except_planted(gen):
    root, _ = gen
    recs = pl.read_parquet(root / "demo_truth/records.parquet")
    n_checked = 0
    for key in NHS_EXTRACTS:
        for f in files_of(root, key):
            _, rows = read_rows(f, key)
            tags = recs.filter((pl.col("agency") == key[0]) & (pl.col("file_name") == f.name)).sort("row_number")["violations"].to_list()
            assert len(tags) == len(rows)
            for row, t in zip(rows, tags):
                v = row["nhs_number"]
                if "nhs_number_check_digit" in t:
                    assert not is_valid_nhs(v)
                elif v is not None:
                    assert is_valid_nhs(v), (f.name, v)
                    n_checked += 1
    assert n_checked > 5000
    people = pl.read_parquet(root / "demo_truth/people.parquet")
    assert all(is_valid_nhs(x) for x in people["nhs_number"].to_list())
    assert people["nhs_number"].n_unique() == people.height
    amb = pl.read_parquet(root / "demo_truth/records.parquet").filter(pl.col("agency") == "county_ambulance")
    _, rows = read_rows(files_of(root, ("county_ambulance", "incidents"))[-1], ("county_ambulance", "incidents"))
    blank = sum(1 for r in rows if r["nhs_number"] is None) / max(1, len(rows))
    assert amb.height > 0 and 0.15 < blank < 0.7


def test_upns_and_attendance(gen):
    root, _ = gen
    key = ("county_council", "school_attendance")
    recs = pl.read_parquet(root / "demo_truth/records.parquet")
    f = files_of(root, key)[-1]
    _, rows = read_rows(f, key)
    tags = recs.filter((pl.col("agency") == key[0]) & (pl.col("file_name") == f.name)).sort("row_number")["violations"].to_list()
    clean = [r for r, t in zip(rows, tags) if not t]
    assert all(is_valid_upn(r["upn"]) for r in clean)
    assert all(int(r["attended_sessions"]) <= int(r["possible_sessions"]) for r in clean)
    assert {r["term"] for r in clean} == {"AUTUMN", "SPRING", "SUMMER"}
    assert {r["academic_year"] for r in clean} == {"2025/26"}
    low = sum(1 for r in clean if int(r["attended_sessions"]) / int(r["possible_sessions"]) < 0.9) / len(clean)
    assert 0.02 < low < 0.12
    people = pl.read_parquet(root / "demo_truth/people.parquet")
    assert all(is_valid_upn(u) for u in people["upn"].drop_nulls().to_list())


def test_falls_truth(gen):
    root, _ = gen
    ev = pl.read_parquet(root / "demo_truth/events.parquet")
    adm = ev.filter(pl.col("extract") == "emergency_admissions")
    phof = adm.filter(pl.col("is_falls_phof"))
    assert phof.height > 50
    assert phof["primary_diagnosis"].str.contains(r"^[ST]").all()
    assert (phof["age_at_event"] >= 65).all() and phof["ward_code_at_event"].null_count() == 0
    assert (phof["episode_number"] == 1).all() and phof["admission_method"].str.starts_with("2").all()
    # near-misses that must not count
    fallish = adm.filter(pl.col("is_fall") & ~pl.col("is_falls_phof"))
    assert fallish.filter(pl.col("admission_method").is_in(["11", "12", "13"])).height > 0
    assert fallish.filter(pl.col("episode_number") > 1).height > 0
    assert fallish.filter(pl.col("age_at_event") < 65).height > 0
    assert fallish.filter(pl.col("ward_code_at_event").is_null()).height > 0
    assert fallish.filter(~pl.col("primary_diagnosis").str.contains(r"^[ST]")).height > 0
    assert adm.filter(pl.col("primary_diagnosis").str.contains(r"^[ST]") & ~pl.col("is_fall")).height > 0
    # rate: roughly 2,000 per 100,000 aged 65+ per year
    pe = pl.read_csv(root / "reference/population_estimates.csv").filter((pl.col("year") == 2025) & (pl.col("age") >= 65))
    per_year = phof.height / 2.0
    rate = per_year / pe["population"].sum() * 100_000
    assert 1000 < rate < 3500, rate
    # falls flow into ambulance, A&E, fire and Age Well
    assert ev.filter((pl.col("extract") == "ae_attendances") & pl.col("is_fall")).height > 0
    assert ev.filter((pl.col("agency") == "county_ambulance") & pl.col("is_fall")).height > 0


def test_canaries(gen):
    root, _ = gen
    can = json.loads((root / "demo_truth/canaries.json").read_text("utf-8"))
    assert len(can) == 5
    recs = pl.read_parquet(root / "demo_truth/records.parquet")
    ids = [c["person_id"] for c in can]
    seen = recs.filter(pl.col("person_id").is_in(ids))
    agencies = set(seen["agency"].to_list())
    assert {"riverside_acute", "county_ambulance", "riverside_fire"} <= agencies
    acute = "".join(f.read_text("utf-8") for f in files_of(root, ("riverside_acute", "emergency_admissions")))
    assert all(c["surname"] in acute for c in can)
    assert all(is_valid_nhs(c["nhs_number"]) for c in can)
    people = pl.read_parquet(root / "demo_truth/people.parquet")
    assert people.filter(pl.col("is_canary")).height == 5


def test_truth_schemas(gen):
    root, _ = gen
    t = root / "demo_truth"
    assert pl.read_parquet(t / "people.parquet").columns[:9] == [
        "person_id", "nhs_number", "upn", "forename", "surname", "date_of_birth", "sex", "opted_out", "is_canary"]
    assert pl.read_parquet(t / "residence.parquet").columns[:7] == [
        "person_id", "uprn", "postcode", "lsoa_code", "ward_code", "valid_from", "valid_to"]
    assert pl.read_parquet(t / "households.parquet").columns == ["household_id", "uprn", "address_line", "postcode", "ward_code"]
    ev = pl.read_parquet(t / "events.parquet")
    for c in ["person_id", "agency", "extract", "record_id", "event_date", "event_type", "episode_number",
              "admission_method", "primary_diagnosis", "external_cause", "is_falls_phof", "age_at_event",
              "ward_code_at_event"]:
        assert c in ev.columns
    dl = pl.read_parquet(t / "deliveries.parquet")
    assert dl.columns == ["agency", "extract", "file_name", "planned_arrival", "covers_from", "covers_to", "rows", "planted_late"]
    people = pl.read_parquet(t / "people.parquet")
    share = people["opted_out"].mean()
    assert 0.03 < share < 0.07
    man = json.loads((t / "manifest.json").read_text())
    assert man["preset"] == "small" and man["seed"] == 42 and man["as_of"] == "2026-11-27"
    # movers: some people have more than one district address
    res = pl.read_parquet(t / "residence.parquet").filter(pl.col("ward_code").is_not_null())
    assert res.group_by("person_id").len().filter(pl.col("len") > 1).height > 100


def test_identifier_mess_present(gen):
    root, _ = gen
    key = ("riverside_acute", "ae_attendances")
    _, rows = read_rows(files_of(root, key)[-1], key)
    pcs = [r["postcode"] for r in rows if r["postcode"]]
    assert any(" " not in p for p in pcs) and any(p != p.upper() for p in pcs)
    assert any(p.startswith("ZZ99") or not p.upper().startswith("RV") for p in pcs)


def test_households_and_addresses_consistent(gen):
    root, _ = gen
    al = pl.read_csv(root / "reference/address_lookup.csv", schema_overrides={"uprn": pl.Utf8})
    hh = pl.read_parquet(root / "demo_truth/households.parquet")
    assert hh["uprn"].null_count() == 0 and hh["uprn"].is_in(al["uprn"].implode()).all()
    res = pl.read_parquet(root / "demo_truth/residence.parquet").filter(pl.col("ward_code").is_not_null())
    j = res.join(al, on="uprn", how="left")
    assert j["address_line"].null_count() == 0
    assert (j["postcode"] == j["postcode_right"]).all() and (j["ward_code"] == j["ward_code_right"]).all()
    # district postcodes in extracts resolve through the postcode lookup once normalised
    pcs = set(pl.read_csv(root / "reference/geography_postcodes.csv")["postcode"].to_list())
    key = ("county_council", "adult_social_care_referrals")
    _, rows = read_rows(files_of(root, key)[-1], key)
    norm = [r["postcode"].upper().replace(" ", "") for r in rows if r["postcode"] and r["postcode"].upper().startswith("RV")]
    canon = {p.replace(" ", "") for p in pcs}
    assert norm and sum(p in canon for p in norm) / len(norm) > 0.97


def test_clean_rows_have_dob_before_event(gen):
    root, _ = gen
    key = ("riverside_acute", "ae_attendances")
    recs = pl.read_parquet(root / "demo_truth/records.parquet")
    for f in files_of(root, key):
        _, rows = read_rows(f, key)
        tags = recs.filter((pl.col("agency") == key[0]) & (pl.col("file_name") == f.name)).sort("row_number")["violations"].to_list()
        for r, t in zip(rows, tags):
            if not t:
                assert r["date_of_birth"] <= r["arrival_datetime"][:10], r


def test_none_means_default(tmp_path):
    s = generate(tmp_path / "d", preset="small", seed=1, as_of=None, violation_rate=None, nightly_days=None)
    assert s["as_of"] == "2026-11-27"
    assert (tmp_path / "d/landing/riverside_acute/emergency_admissions/emergency_admissions_20261126.csv").exists()


def _line(text: str) -> str:
    """An address line compared by hand: lower case, letters and digits, the street type spelt out."""
    words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    full = {"rd": "road", "st": "street", "ave": "avenue", "cl": "close", "ln": "lane", "dr": "drive",
            "cres": "crescent", "gdns": "gardens", "terr": "terrace", "pl": "place", "ct": "court"}
    return " ".join(words[:-1] + [full.get(words[-1], words[-1])]) if words else ""


def test_address_lines_are_each_persons_address_on_the_day_with_the_agencies_mess(gen):
    root, _ = gen
    key = ("county_police", "incidents")
    recs = pl.read_parquet(root / "demo_truth/records.parquet").filter(
        (pl.col("agency") == key[0]) & (pl.col("extract") == key[1]))
    res = pl.read_parquet(root / "demo_truth/residence.parquet")
    lines = dict(pl.read_csv(root / "reference/address_lookup.csv", infer_schema=False).select("uprn", "address_line").iter_rows())
    same = differ = blank = 0
    written = set()
    for f in files_of(root, key):
        _, rows = read_rows(f, key)
        people = recs.filter(pl.col("file_name") == f.name).sort("row_number")["person_id"].to_list()
        for person, row in zip(people, rows):
            try:
                day = datetime.strptime(row["occurrence_datetime"] or "", "%d/%m/%Y %H:%M").date()
            except ValueError:  # a planted violation
                continue
            at = res.filter((pl.col("person_id") == person) & (pl.col("valid_from").is_null() | (pl.col("valid_from") <= day))
                            & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= day)))
            if at.height != 1 or at["uprn"][0] is None:
                continue
            if row["address_line"] is None:
                blank += 1
                continue
            written.add(row["address_line"])
            if _line(row["address_line"]) == _line(lines[at["uprn"][0]]):
                same += 1
            else:
                differ += 1
    total = same + differ + blank
    assert total > 300
    assert 0.05 < blank / total < 0.30  # some systems leave it blank
    assert 0 < differ / (same + differ) < 0.05  # now and then mistyped or a neighbour's number
    assert any(w.isupper() for w in written) and any("," in w for w in written)
    assert any(re.search(r" (Rd|St|Ave|Cl|Ln|Dr|Cres|Gdns|Terr|Pl|Ct)$", w, re.I) for w in written)
