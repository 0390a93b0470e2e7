"""One whole night of the small demo partnership, checked against the generator's truth.

The oracles here never read the product's tables to decide what is right: FALLS-01 is
recomputed from the delivered files with the published definition and the PHE methods
(tests/oracles/phe_methods.py); which rows are bad comes from the generator's truth.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.oracles.phe_methods import dsr

pytestmark = pytest.mark.dbt_free

ESP = Path(__file__).resolve().parents[1] / "oracles" / "phe" / "esp2013.csv"


def _warehouse(settings):
    return duckdb.connect(str(settings.warehouse_path), read_only=True)


def test_the_night_runs_every_step_successfully(demo_night):
    settings, result = demo_night
    failures = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, f"failed steps: {failures}"


def test_every_delivery_keeps_every_row_read_as_valid_or_quarantined(demo_night):
    settings, _ = demo_night
    truth = pl.read_parquet(settings.truth_dir / "records.parquet")
    rows_in_file = {(f"{a}__{e}", f): n for a, e, f, n in truth.group_by("agency", "extract", "file_name").len().iter_rows()}
    with _warehouse(settings) as con:
        deliveries = con.execute(
            "select delivery_id, contract_id, file_name, rows_read, rows_valid, rows_quarantined from ops.deliveries "
            "where status = 'accepted'").fetchall()
        assert deliveries
        for did, cid, name, read, valid, quarantined in deliveries:
            assert read == valid + quarantined, name
            assert read == rows_in_file.get((cid, name), 0), f"{name}: rows read differ from rows written"
            counts = [con.execute(f'select count(*) from {schema}."{cid}" where _delivery_id = ?', [did]).fetchall()[0][0]
                      for schema in ("raw", "valid", "quarantine")]
            assert counts == [read, valid, quarantined], name


def test_each_planted_violation_is_quarantined_with_the_rule_it_broke(demo_night):
    settings, _ = demo_night
    truth = pl.read_parquet(settings.truth_dir / "records.parquet")
    with _warehouse(settings) as con:
        quarantined = {}
        for cid, in con.execute("select distinct contract_id from ops.deliveries where status = 'accepted'").fetchall():
            for name, row, rules in con.execute(
                    f'select d.file_name, q._row_number, q._rules from quarantine."{cid}" q '
                    f'join ops.deliveries d on d.delivery_id = q._delivery_id').fetchall():
                quarantined[(cid, name, row)] = {r.split(":")[-1] for r in rules}
    truth = truth.with_columns(contract=pl.concat_str("agency", pl.lit("__"), "extract"))
    bad = truth.filter(pl.col("violations").list.len() > 0)
    assert bad.height > 0, "the generator planted no violations"
    missed, wrong_reason = [], []
    for cid, name, row, kinds in bad.select("contract", "file_name", "row_number", "violations").iter_rows():
        got = quarantined.get((cid, name, row))
        if got is None:
            missed.append((cid, name, row, kinds))
        elif not _kinds_match(set(kinds), got):
            wrong_reason.append((cid, name, row, kinds, sorted(got)))
    planted = set(bad.select("contract", "file_name", "row_number").iter_rows())
    clean_quarantined = [k for k in quarantined if k not in planted]
    assert not missed, f"{len(missed)} planted violations not quarantined, e.g. {missed[:5]}"
    assert not wrong_reason, f"{len(wrong_reason)} quarantined for another reason, e.g. {wrong_reason[:5]}"
    assert not clean_quarantined, f"{len(clean_quarantined)} clean rows quarantined, e.g. {clean_quarantined[:5]}"


def _kinds_match(planted: set[str], got: set[str]) -> bool:
    """Each planted rule kind is among the rules reported for the row.

    The generator names kinds as the contract does; a date that cannot exist
    ('2026-02-30') is reported by the product as `date_parse`."""
    return planted <= got


# --- FALLS-01, recomputed from the delivered files --------------------------------------

def _read_admissions(settings, bad_rows: set[tuple[str, int]]) -> list[dict]:
    rows = {}
    folder = settings.landing_dir / "riverside_acute" / "emergency_admissions"
    for path in sorted(folder.iterdir(), key=lambda p: (p.stat().st_mtime, p.name)):
        with open(path, encoding="utf-8", newline="") as fh:
            for i, rec in enumerate(csv.DictReader(fh, delimiter="|"), start=1):
                if (path.name, i) in bad_rows:
                    continue
                rows[rec["episode_id"]] = rec  # a later delivery of an episode replaces it
    return list(rows.values())


def _age(dob: date, on: date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def _falls_phof(rec: dict) -> bool:
    codes = [rec[f"secondary_diagnosis_{i}"] for i in range(1, 5)] + [rec["primary_diagnosis"]]
    return (rec["episode_number"].strip() == "1"
            and rec["admission_method"].startswith("2")
            and "S00" <= rec["primary_diagnosis"][:3] <= "T98"
            and any(c and "W00" <= c[:3] <= "W19" for c in codes))


def _periods(first: date, last: date):
    out = []
    y, m = first.year, first.month
    while date(y, m, 1) <= last:
        start = date(y, m, 1)
        for kind, months in (("month", 1), ("quarter", 3)):
            if kind == "quarter" and m not in (1, 4, 7, 10):
                continue
            ny, nm = (y + (m - 1 + months) // 12, (m - 1 + months) % 12 + 1)
            end = date(ny, nm, 1) - timedelta(days=1)
            if start >= first and end <= last:
                out.append((kind, start, end))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


@pytest.fixture(scope="module")
def falls_01_expected(demo_night):
    settings, _ = demo_night
    truth = pl.read_parquet(settings.truth_dir / "records.parquet")
    bad = {(n, r) for n, r in truth.filter((pl.col("violations").list.len() > 0) & (pl.col("extract") == "emergency_admissions"))
           .select("file_name", "row_number").iter_rows()}
    admissions = _read_admissions(settings, bad)
    ref = settings.reference_dir
    ward_of = {}
    with open(ref / "geography_postcodes.csv", newline="") as fh:
        for rec in csv.DictReader(fh):
            ward_of[rec["postcode"].replace(" ", "").upper()] = rec["ward_code"]
    district_of = {}
    with open(ref / "geography_wards.csv", newline="") as fh:
        for rec in csv.DictReader(fh):
            district_of[rec["ward_code"]] = rec["district_code"]
    bands = []
    with open(ESP, newline="") as fh:
        for rec in csv.DictReader(fh):
            lo = int(rec["ageband"].split("-")[0].rstrip("+"))
            if lo >= 65:
                bands.append((rec["ageband"], lo, float(rec["esp2013"])))

    def band(age):
        return max(b for b in bands if b[1] <= age)[0]

    pop = defaultdict(float)  # (year, ward, sex, band) -> residents
    years = set()
    with open(ref / "population_estimates.csv", newline="") as fh:
        for rec in csv.DictReader(fh):
            age = int(rec["age"])
            years.add(int(rec["year"]))
            if age >= 65:
                pop[(int(rec["year"]), rec["ward_code"], rec["sex"], band(age))] += float(rec["population"])

    dates = [date.fromisoformat(r["admission_date"]) for r in admissions]
    periods = _periods(min(dates), max(dates))
    events = defaultdict(int)  # (kind, start, geography, breakdown, band)
    for rec in admissions:
        if not _falls_phof(rec):
            continue
        adm = date.fromisoformat(rec["admission_date"])
        age = _age(date.fromisoformat(rec["date_of_birth"]), adm)
        ward = ward_of.get(rec["postcode"].replace(" ", "").upper())
        if age < 65 or ward is None:
            continue
        sex = {"1": "M", "2": "F"}.get(rec["sex"])
        for kind, start, end in periods:
            if start <= adm <= end:
                for geo in (("ward", ward), ("district", district_of[ward])):
                    events[(kind, start, geo, "persons", band(age))] += 1
                    if sex:
                        events[(kind, start, geo, f"sex:{sex}", band(age))] += 1
    expected = {}
    for kind, start, end in periods:
        year = max((y for y in years if y <= start.year), default=min(years))
        ydays = (date(start.year + 1, 1, 1) - date(start.year, 1, 1)).days
        frac = ((end - start).days + 1) / ydays
        for ward, district in district_of.items():
            for geo in (("ward", ward), ("district", district)):
                for breakdown, sexes in (("persons", ("M", "F")), ("sex:M", ("M",)), ("sex:F", ("F",))):
                    wards = [ward] if geo[0] == "ward" else [w for w, d in district_of.items() if d == district]
                    pops = [sum(pop[(year, w, s, b[0])] for w in wards for s in sexes) * frac for b in bands]
                    counts = [events[(kind, start, geo, breakdown, b[0])] for b in bands]
                    result = dsr(counts, pops, [b[2] for b in bands], multiplier=100_000, conf=0.95)
                    expected[(kind, start, geo[0], geo[1], breakdown)] = (sum(counts), result)
    return expected


def test_falls_01_equals_an_independent_computation_from_the_delivered_files(demo_night, falls_01_expected):
    settings, _ = demo_night
    with _warehouse(settings) as con:
        got = con.execute(
            """select period_type, period_start, geography_type, geography_code, breakdown, numerator, value, lower_ci, upper_ci
               from marts.fct_indicator_values where indicator_id = 'FALLS-01'""").fetchall()
    got = {(k, s, gt, gc, b): (n, v, lo, hi) for k, s, gt, gc, b, n, v, lo, hi in got}
    assert set(got) == set(falls_01_expected)
    published = 0
    for key, (count, result) in falls_01_expected.items():
        n, v, lo, hi = got[key]
        assert n == count, key
        if result.value is None:
            assert v is None and lo is None and hi is None, key
        else:
            published += 1
            assert v == pytest.approx(result.value, rel=1e-9), key
            assert lo == pytest.approx(result.lower, rel=1e-9), key
            assert hi == pytest.approx(result.upper, rel=1e-9), key
    assert published > 0, "no FALLS-01 value reached 10 events: the check would prove nothing"


def test_falls_01_counts_the_admissions_the_generator_planted_as_falls(demo_night, falls_01_expected):
    """The generator's own flag agrees with the definition applied to what was recorded
    (apart from rows it made bad on purpose, and recorded dates of birth it garbled)."""
    settings, _ = demo_night
    months = [(s, c) for (kind, s, gt, _g, b), (c, _r) in falls_01_expected.items()
              if kind == "month" and gt == "district" and b == "persons"]
    first, last = min(s for s, _ in months), max(s for s, _ in months)
    last_day = date(last.year + (last.month == 12), last.month % 12 + 1, 1) - timedelta(days=1)
    events = pl.read_parquet(settings.truth_dir / "events.parquet").filter(
        pl.col("is_falls_phof") & pl.col("event_date").is_between(first, last_day))
    truth_total = events.height
    counted = sum(c for _, c in months)
    assert counted > 0
    assert abs(counted - truth_total) / truth_total < 0.05


# --- the falls-board release ------------------------------------------------------------

def test_the_falls_board_release_holds_no_count_between_1_and_7(demo_night):
    settings, _ = demo_night
    folder = settings.releases_dir / "falls-board" / "2026-11-28"
    assert (folder / "falls-board.duckdb").exists()
    values = pl.read_parquet(folder / "parquet" / "indicator_values.parquet")
    assert values.height > 0
    for col in ("numerator", "denominator"):
        present = values.filter(pl.col(col).is_not_null())[col]
        assert not present.is_between(1, 7).any(), col
        assert (present % 5 == 0).all(), col
    suppressed = values.filter(pl.col("numerator_suppressed"))
    assert suppressed.height > 0, "the small preset should have some suppressed cells"
    assert suppressed["value"].null_count() == suppressed.height
    with duckdb.connect(str(folder / "falls-board.duckdb"), read_only=True) as con:
        db = con.sql("select * from indicator_values order by all").pl()
    assert db.sort(db.columns).equals(values.sort(values.columns))


def test_the_release_manifest_names_every_file_by_its_hash(demo_night):
    import hashlib

    settings, _ = demo_night
    folder = settings.releases_dir / "falls-board" / "2026-11-28"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["protocol"]["id"] == "falls-board"
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == digest, rel
    assert manifest["row_counts"]["indicator_values"] == pl.read_parquet(folder / "parquet" / "indicator_values.parquet").height
    assert manifest["lineage"]["deliveries"], "lineage names the deliveries by hash"


# --- bad input on a real night ----------------------------------------------------------

def test_a_file_no_contract_knows_is_rejected_with_a_reason_naming_it(demo_night):
    from tests.conftest import UNKNOWN_FILE

    settings, _ = demo_night
    with _warehouse(settings) as con:
        rows = con.execute("select status, reason_code, reason from ops.deliveries where landing_path = ?",
                           [UNKNOWN_FILE]).fetchall()
    assert rows == [("rejected", "unknown_extract", f"{UNKNOWN_FILE}: no contract for agency 'unknown_agency', extract 'things'")]


def test_a_file_sent_twice_is_rejected_as_a_duplicate_and_loads_nothing(demo_night):
    from tests.conftest import RESENT_FILE

    settings, _ = demo_night
    with _warehouse(settings) as con:
        status, code, reason, did = con.execute(
            "select status, reason_code, reason, delivery_id from ops.deliveries where landing_path = ?", [RESENT_FILE]).fetchall()[0]
        loaded = con.execute('select count(*) from raw.riverside_acute__emergency_admissions where _delivery_id = ?', [did]).fetchall()[0][0]
    assert (status, code) == ("rejected", "duplicate")
    assert "identical to delivery" in reason and RESENT_FILE.rsplit("/", 1)[1] in reason
    assert loaded == 0


def test_the_original_files_are_archived_unchanged_by_hash(demo_night):
    import hashlib

    settings, _ = demo_night
    with _warehouse(settings) as con:
        rows = con.execute("select sha256, archive_path from ops.deliveries where status = 'accepted'").fetchall()
    assert rows
    for digest, path in rows:
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
