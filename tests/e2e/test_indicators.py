"""Every shared outcome indicator of the small demo night, recomputed independently.

The oracles here read the delivered files (landing/), the place reference CSVs and the
generator's truth; they never read the product's tables to decide what is right, apart from
the person linkage where an indicator needs people linked across agencies (see the FALLS-02
and FALLS-03 section). Each indicator's published definition is applied in plain Python,
aggregated by period, ward/district and breakdown, and compared with marts.fct_indicator_values.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from tests.oracles.phe_methods import wilson_lower, wilson_upper

pytestmark = pytest.mark.dbt_free

BANK_HOLIDAYS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "reference" / "bank_holidays_england_wales.csv"
REL = 1e-9


# --- reading what was delivered -----------------------------------------------------------

def _bad_rows(settings, agency: str, extract: str) -> set[tuple[str, int]]:
    """Rows the generator made bad on purpose (the product quarantines exactly these)."""
    truth = pl.read_parquet(settings.truth_dir / "records.parquet")
    bad = truth.filter((pl.col("violations").list.len() > 0) & (pl.col("agency") == agency) & (pl.col("extract") == extract))
    return set(bad.select("file_name", "row_number").iter_rows())


def _files(settings, agency: str, extract: str) -> list[Path]:
    folder = settings.landing_dir / agency / extract
    return sorted(folder.iterdir(), key=lambda p: (p.stat().st_mtime, p.name))


def _read_rows(path: Path, sep: str = ",", encoding: str = "utf-8") -> list[dict]:
    if path.suffix == ".parquet":
        return pl.read_parquet(path).to_dicts()
    if path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        rows = list(book.active.iter_rows(values_only=True))
        book.close()
        header = [str(h) for h in rows[1]]  # a title row sits above the header
        return [{h: ("" if v is None else v) for h, v in zip(header, r)} for r in rows[2:]]
    with open(path, encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh, delimiter=sep))


def _incremental(settings, agency, extract, key, sep=",", encoding="utf-8") -> list[dict]:
    """Valid rows of every delivery, a later delivery of a key replacing the earlier one.
    Each row carries where it came from: _file, _row."""
    bad = _bad_rows(settings, agency, extract)
    rows = {}
    for path in _files(settings, agency, extract):
        for i, rec in enumerate(_read_rows(path, sep, encoding), start=1):
            if (path.name, i) not in bad:
                rows[tuple(rec[k] for k in key)] = {**rec, "_file": path.name, "_row": i}
    return list(rows.values())


def _snapshot(settings, agency, extract, encoding="utf-8") -> list[dict]:
    """Valid rows of the latest snapshot delivery only."""
    bad = _bad_rows(settings, agency, extract)
    path = _files(settings, agency, extract)[-1]
    return [{**rec, "_file": path.name, "_row": i} for i, rec in enumerate(_read_rows(path, encoding=encoding), start=1)
            if (path.name, i) not in bad]


def _as_date(value) -> date | None:
    """A delivered date or timestamp: ISO, or dd/mm/yyyy as Fire & Rescue and the police write them."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    if text[2:3] == "/":
        return date(int(text[6:10]), int(text[3:5]), int(text[0:2]))
    return date.fromisoformat(text[:10])


def _age(dob: date, on: date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


# --- place ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def place(demo_night):
    settings, _ = demo_night
    ref = settings.reference_dir
    with open(ref / "geography_postcodes.csv", newline="") as fh:
        ward_of = {r["postcode"].replace(" ", "").upper(): r["ward_code"] for r in csv.DictReader(fh)}
    with open(ref / "geography_wards.csv", newline="") as fh:
        district_of = {r["ward_code"]: r["district_code"] for r in csv.DictReader(fh)}
    return ward_of, district_of


def _ward(place, postcode) -> str | None:
    return place[0].get(str(postcode or "").replace(" ", "").upper())


# --- periods and aggregation ------------------------------------------------------------------

def _complete_periods(first: date, last: date, kinds=("month", "quarter"), lookback=0, follow_up=0):
    first = first + timedelta(days=lookback)
    out = []
    y, m = 2000, 1
    while date(y, m, 1) <= last:
        start = date(y, m, 1)
        for kind, months in (("month", 1), ("quarter", 3)):
            if kind not in kinds or (kind == "quarter" and m not in (1, 4, 7, 10)):
                continue
            ny, nm = y + (m - 1 + months) // 12, (m - 1 + months) % 12 + 1
            end = date(ny, nm, 1) - timedelta(days=1)
            if start >= first and end + timedelta(days=follow_up) <= last:
                out.append((kind, start, end))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _percentages(units, periods, place, breakdowns):
    """units: (day, ward, {breakdown name: value}, counted_in_numerator). Every period x
    geography x breakdown label appears, with 0 / 0 where nothing was counted."""
    district_of = place[1]
    labels = ["persons"] + [f"{name}:{v}" for name, values in breakdowns for v in values]
    cells = defaultdict(lambda: [0, 0])
    for day, ward, attrs, hit in units:
        for kind, start, end in periods:
            if start <= day <= end:
                for geo in (("ward", ward), ("district", district_of[ward])):
                    keys = ["persons"] + [f"{n}:{attrs[n]}" for n, values in breakdowns if attrs.get(n) in values]
                    for label in keys:
                        cells[(kind, start, *geo, label)][0] += int(hit)
                        cells[(kind, start, *geo, label)][1] += 1
    expected = {}
    geos = [("ward", w) for w in district_of] + [("district", d) for d in sorted(set(district_of.values()))]
    for kind, start, _end in periods:
        for geo in geos:
            for label in labels:
                x, n = cells.get((kind, start, *geo, label), (0, 0))
                expected[(kind, start, *geo, label)] = (x, n)
    return expected


def _mart(settings, indicator_id):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            """select period_type, period_start, geography_type, geography_code, breakdown,
                      numerator, denominator, value, lower_ci, upper_ci, unit
               from marts.fct_indicator_values where indicator_id = ?""", [indicator_id]).fetchall()
    return {tuple(r[:5]): r[5:] for r in rows}


def _assert_percentages_equal(got, expected, indicator_id):
    assert got, f"{indicator_id}: no rows in the mart"
    assert set(got) == set(expected), (
        f"{indicator_id}: cells differ; only in mart {sorted(set(got) - set(expected))[:5]}, "
        f"only expected {sorted(set(expected) - set(got))[:5]}")
    for key, (x, n) in expected.items():
        numerator, denominator, value, lower, upper, unit = got[key]
        assert (numerator, denominator) == (x, n), (indicator_id, key)
        assert unit == "percent"
        if n == 0:
            assert value is None and lower is None and upper is None, (indicator_id, key)
        else:
            assert value == pytest.approx(100 * x / n, rel=REL), (indicator_id, key)
            assert lower == pytest.approx(100 * wilson_lower(x, n), rel=1e-9, abs=1e-9), (indicator_id, key)
            assert upper == pytest.approx(100 * wilson_upper(x, n), rel=1e-9, abs=1e-9), (indicator_id, key)
    total = sum(n for (kind, _s, gt, _g, b), (_x, n) in expected.items() if gt == "district" and b == "persons")
    hits = sum(x for (kind, _s, gt, _g, b), (x, _n) in expected.items() if gt == "district" and b == "persons")
    assert total > 0 and hits > 0, f"{indicator_id}: nothing counted, the comparison would prove nothing"


# --- FALLS-04 -----------------------------------------------------------------------------------

LIFE_STAGES = [("0-17", 0), ("18-64", 18), ("65+", 65)]
CHILD_AGES = [("under 1", 0), ("1-4", 1), ("5-9", 5), ("10-15", 10), ("16+", 16)]


def _band(age, bands):
    found = None
    for label, lo in bands:
        if age >= lo:
            found = label
    return found


def test_falls_04_equals_an_independent_computation_from_the_delivered_snapshot(demo_night, place):
    settings, _ = demo_night
    cases = _snapshot(settings, "riverside_council", "housing_adaptations")
    referrals = [_as_date(c["referral_date"]) for c in cases]
    last = max(max(d for d in (_as_date(c[k]) for k in ("referral_date", "approval_date", "completion_date")) if d)
               for c in cases)
    periods = _complete_periods(min(referrals), last, lookback=365)
    units = []
    for c in cases:
        done, ward = _as_date(c["completion_date"]), _ward(place, c["postcode"])
        if done is None or ward is None:
            continue
        referred = _as_date(c["referral_date"])
        age = _age(_as_date(c["date_of_birth"]), referred)
        units.append((done, ward, {"age": _band(age, LIFE_STAGES)}, (done - referred).days <= 180))
    expected = _percentages(units, periods, place, [("age", ["0-17", "18-64", "65+"])])
    _assert_percentages_equal(_mart(settings, "FALLS-04"), expected, "FALLS-04")


# --- MASH-01 and MASH-02 ------------------------------------------------------------------------

def _children_referrals(settings):
    return _incremental(settings, "county_council", "children_social_care_referrals", ["referral_id"],
                        encoding="utf-8-sig")


def _bank_holidays() -> set[date]:
    with open(BANK_HOLIDAYS, newline="") as fh:
        return {date.fromisoformat(r["date"]) for r in csv.DictReader(fh)}


def _networkdays_minus_one(start: date, end: date, holidays: set[date]) -> int:
    n, d = 0, start
    while d <= end:
        if d.weekday() < 5 and d not in holidays:
            n += 1
        d += timedelta(days=1)
    return max(n - 1, 0)


def _child_attrs(rec, on: date):
    age = _age(_as_date(rec["date_of_birth"]), on)
    return {"sex": rec["sex"], "age": _band(age, CHILD_AGES)}


CHILD_BREAKDOWNS = [("sex", ["M", "F"]), ("age", ["under 1", "1-4", "5-9", "10-15", "16+"])]


def test_mash_01_equals_an_independent_computation_with_working_days(demo_night, place):
    settings, _ = demo_night
    referrals = _children_referrals(settings)
    holidays = _bank_holidays()
    days = [_as_date(r["referral_datetime"]) for r in referrals]
    periods = _complete_periods(min(days), max(days))
    units = []
    for r in referrals:
        ward = _ward(place, r["postcode"])
        if ward is None:
            continue
        received, decided = _as_date(r["referral_datetime"]), _as_date(r["decision_datetime"])
        in_time = decided is not None and _networkdays_minus_one(received, decided, holidays) <= 1
        units.append((received, ward, _child_attrs(r, received), in_time))
    expected = _percentages(units, periods, place, CHILD_BREAKDOWNS)
    _assert_percentages_equal(_mart(settings, "MASH-01"), expected, "MASH-01")
    # Weekends and bank holidays matter here: some referral is on time only because of them.
    weekend_saved = [u for u, r in zip(units, [r for r in referrals if _ward(place, r["postcode"])])
                     if u[3] and (_as_date(r["decision_datetime"]) - u[0]).days > 1]
    assert weekend_saved, "no referral decided over a weekend or bank holiday: the working-day rule is untested"


def _twelve_months_before(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return date(d.year - 1, 2, 28)


def test_mash_02_equals_the_children_in_need_census_re_referral_definition(demo_night, place):
    settings, _ = demo_night
    referrals = _children_referrals(settings)
    by_child = defaultdict(list)
    for r in referrals:
        by_child[r["child_id"]].append(r)
    days = [_as_date(r["referral_datetime"]) for r in referrals]
    periods = _complete_periods(min(days), max(days), lookback=366)
    units = []
    for child, rs in by_child.items():
        rs.sort(key=lambda r: (r["referral_datetime"], r["referral_id"]))
        for previous, r in zip([None] + rs[:-1], rs):
            ward = _ward(place, r["postcode"])
            if ward is None:
                continue
            received = _as_date(r["referral_datetime"])
            again = previous is not None and _as_date(previous["referral_datetime"]) >= _twelve_months_before(received)
            units.append((received, ward, _child_attrs(r, received), again))
    expected = _percentages(units, periods, place, CHILD_BREAKDOWNS)
    _assert_percentages_equal(_mart(settings, "MASH-02"), expected, "MASH-02")


def test_mash_02_re_referrals_are_the_childrens_true_repeat_referrals(demo_night):
    """The generator's truth agrees: the children re-referred are people it referred twice
    within a year (child_id is the council's stable id, so this is exact)."""
    settings, _ = demo_night
    events = pl.read_parquet(settings.truth_dir / "events.parquet").filter(
        pl.col("event_type") == "children_social_care_referral").sort("person_id", "event_date")
    repeats = events.with_columns(pl.col("event_date").shift(1).over("person_id").alias("previous")).filter(
        pl.col("previous").is_not_null()
        & (pl.col("previous") >= pl.col("event_date").dt.offset_by("-12mo")))
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        product = con.execute("select count(*) from intermediate.int_children_referrals where is_re_referral").fetchall()[0][0]
    assert repeats.height > 0
    # Rows the generator made bad on purpose are quarantined, so the product may see fewer.
    assert 0.9 * repeats.height <= product <= repeats.height


# --- linked indicators: FALLS-02, FALLS-03, SF-01, SF-02 ---------------------------------------
#
# These count people (or households) across agencies. The definitions are applied here in
# Python to the delivered files; who is who comes either from the product's linkage (so the
# indicator logic must agree exactly) or from the generator's truth (so the figures must be
# close: the only difference left is linkage error).

FALL_BANDS = [("65-79", 65), ("80+", 80)]
FALL_BREAKDOWNS = [("sex", ["M", "F"]), ("age", ["65-79", "80+"])]


@pytest.fixture(scope="module")
def linked(demo_night):
    """(contract, file name, row) -> (person_id, household_id), as the product linked them."""
    settings, _ = demo_night
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            """select p.contract_id, d.file_name, p.row_number, p.person_id, p.household_id
               from linkage.person_records p join ops.deliveries d on d.delivery_id = p.delivery_id""").fetchall()
    return {(c, f, r): (p, h) for c, f, r, p, h in rows}


@pytest.fixture(scope="module")
def true_people(demo_night):
    """The same mapping from the generator's truth: who each delivered row really is."""
    settings, _ = demo_night
    records = pl.read_parquet(settings.truth_dir / "records.parquet")
    households = dict(pl.read_parquet(settings.truth_dir / "people.parquet").select("person_id", "household_id").iter_rows())
    return {(f"{a}__{e}", f, r): (p, households.get(p))
            for a, e, f, r, p in records.select("agency", "extract", "file_name", "row_number", "person_id").iter_rows()}


def _emergency_methods() -> set[str]:
    path = BANK_HOLIDAYS.parent / "admission_methods.csv"
    with open(path, newline="") as fh:
        return {r["admission_method"] for r in csv.DictReader(fh) if r["is_emergency"].lower() == "true"}


def _w_fall(*codes) -> bool:
    return any(c and "W00" <= str(c)[:3] <= "W19" for c in codes)


def _nhs_sex(code) -> str:
    return {"1": "M", "2": "F"}.get(str(code), "U")


@pytest.fixture(scope="module")
def fall_sources(demo_night, place):
    """Every admission, A&E attendance and ambulance incident in use, with whether it is a fall."""
    settings, _ = demo_night
    emergency = _emergency_methods()
    out, coverage = [], []
    admissions = _incremental(settings, "riverside_acute", "emergency_admissions", ["episode_id"], sep="|")
    for r in admissions:
        fall = (r["episode_number"].strip() == "1" and r["admission_method"] in emergency
                and _w_fall(r["primary_diagnosis"], *(r[f"secondary_diagnosis_{i}"] for i in range(1, 5))))
        out.append(("riverside_acute__emergency_admissions", r, _as_date(r["admission_date"]), 1, r["episode_id"],
                    _nhs_sex(r["sex"]), fall))
    attendances = _incremental(settings, "riverside_acute", "ae_attendances", ["attendance_id"], sep="|")
    for r in attendances:
        out.append(("riverside_acute__ae_attendances", r, _as_date(r["arrival_datetime"]), 2, r["attendance_id"],
                    _nhs_sex(r["sex"]), _w_fall(r["primary_diagnosis"], r["secondary_diagnosis"])))
    incidents = _incremental(settings, "county_ambulance", "incidents", ["incident_id"])
    for r in incidents:
        sex = r["sex"].upper() if r["sex"].upper() in ("M", "F") else "U"
        out.append(("county_ambulance__incidents", r, _as_date(r["incident_datetime"]), 3, r["incident_id"], sex,
                    r["chief_complaint"].upper() == "FALL"))
    for contract in ("riverside_acute__emergency_admissions", "riverside_acute__ae_attendances", "county_ambulance__incidents"):
        days = [d for c, _r, d, *_ in out if c == contract]
        coverage.append((min(days), max(days)))
    return out, coverage


def _falls(fall_sources, people, place):
    """Each person's falls: records a day or less apart are one fall, dated by the first,
    described by the earliest record with a home in the district (admission, then A&E, then
    ambulance on the same day)."""
    records, _ = fall_sources
    by_person = defaultdict(list)
    for contract, r, day, priority, record_id, sex, fall in records:
        who = people.get((contract, r["_file"], r["_row"]))
        if fall and who:
            by_person[who[0]].append((day, priority, record_id, r, sex, _ward(place, r["postcode"])))
    falls = []
    for person, recs in by_person.items():
        recs.sort(key=lambda x: (x[0], x[2]))
        episodes = []
        for rec in recs:
            if episodes and (rec[0] - episodes[-1][-1][0]).days <= 1:
                episodes[-1].append(rec)
            else:
                episodes.append([rec])
        mine = []
        for ep in episodes:
            start = ep[0][0]
            rep = min(ep, key=lambda x: (x[5] is None, x[0], x[1], x[2]))
            age = _age(_as_date(rep[3]["date_of_birth"]), start)
            mine.append(dict(person=person, date=start, age=age, sex=rep[4], ward=rep[5],
                             band=_band(age, FALL_BANDS) if age >= 65 else None))
        for i, f in enumerate(mine):
            f["previous"] = mine[i - 1]["date"] if i else None
            f["next"] = mine[i + 1]["date"] if i + 1 < len(mine) else None
        falls += mine
    return falls


def _falls_02_expected(fall_sources, people, place):
    falls = _falls(fall_sources, people, place)
    _, coverage = fall_sources
    periods = _complete_periods(max(c[0] for c in coverage), min(c[1] for c in coverage), follow_up=90)
    units = []
    for kind, start, end in periods:
        first, again = {}, defaultdict(bool)
        for f in sorted(falls, key=lambda f: f["date"]):
            if start <= f["date"] <= end and f["age"] >= 65 and f["ward"]:
                first.setdefault(f["person"], f)
                again[f["person"]] |= f["next"] is not None and (f["next"] - f["date"]).days <= 90
        for person, f in first.items():
            units.append(((kind, start, end), f, again[person]))
    cells = {}
    for (kind, start, end) in periods:
        part = [(f["date"], f["ward"], {"sex": f["sex"], "age": f["band"]}, hit)
                for p, f, hit in units if p == (kind, start, end)]
        # each unit belongs to exactly this period: aggregate it alone
        cells.update({k: v for k, v in _percentages(part, [(kind, start, end)], place, FALL_BREAKDOWNS).items()})
    return cells


def test_falls_02_equals_an_independent_computation_over_the_linked_people(demo_night, place, linked, fall_sources):
    settings, _ = demo_night
    expected = _falls_02_expected(fall_sources, linked, place)
    _assert_percentages_equal(_mart(settings, "FALLS-02"), expected, "FALLS-02")


def _district_totals(cells):
    x = sum(v[0] for (kind, _s, gt, _g, b), v in cells.items() if kind == "quarter" and gt == "district" and b == "persons")
    n = sum(v[1] for (kind, _s, gt, _g, b), v in cells.items() if kind == "quarter" and gt == "district" and b == "persons")
    return x, n


def test_falls_02_is_close_to_the_same_definition_over_the_true_people(demo_night, place, linked, true_people, fall_sources):
    by_linkage = _district_totals(_falls_02_expected(fall_sources, linked, place))
    by_truth = _district_totals(_falls_02_expected(fall_sources, true_people, place))
    assert by_truth[1] > 0 and by_truth[0] > 0
    assert abs(by_linkage[1] - by_truth[1]) <= max(3, 0.05 * by_truth[1]), (by_linkage, by_truth)
    assert abs(by_linkage[0] - by_truth[0]) <= max(3, 0.2 * by_truth[0]), (by_linkage, by_truth)


def _reach_sources(settings):
    visits = _incremental(settings, "riverside_fire", "safe_and_well_visits", ["visit_id"], encoding="cp1252")
    classes = _snapshot(settings, "riverside_agewell", "falls_class_referrals")
    reach = [("riverside_fire__safe_and_well_visits", r, _as_date(r["visit_date"])) for r in visits]
    reach += [("riverside_agewell__falls_class_referrals", r, _as_date(r["referral_date"]))
              for r in classes if r["consent_to_share"] is True]
    coverage = [(min(_as_date(r["visit_date"]) for r in visits), max(_as_date(r["visit_date"]) for r in visits)),
                (min(_as_date(r["referral_date"]) for r in classes), max(_as_date(r["referral_date"]) for r in classes))]
    return reach, coverage


def _falls_03_expected(settings, fall_sources, people, place):
    falls = _falls(fall_sources, people, place)
    reach, reach_coverage = _reach_sources(settings)
    reached_on = defaultdict(list)
    for contract, r, day in reach:
        who = people.get((contract, r["_file"], r["_row"]))
        if who:
            reached_on[who[0]].append(day)
    coverage = fall_sources[1] + reach_coverage
    periods = _complete_periods(max(c[0] for c in coverage), min(c[1] for c in coverage), lookback=365, follow_up=28)
    units = []
    for f in falls:
        first = f["previous"] is None or (f["date"] - f["previous"]).days > 365
        if first and f["age"] >= 65 and f["ward"]:
            hit = any(0 <= (d - f["date"]).days <= 28 for d in reached_on[f["person"]])
            units.append((f["date"], f["ward"], {"sex": f["sex"], "age": f["band"]}, hit))
    return _percentages(units, periods, place, FALL_BREAKDOWNS)


def test_falls_03_equals_an_independent_computation_over_the_linked_people(demo_night, place, linked, fall_sources):
    settings, _ = demo_night
    expected = _falls_03_expected(settings, fall_sources, linked, place)
    _assert_percentages_equal(_mart(settings, "FALLS-03"), expected, "FALLS-03")


def test_falls_03_is_close_to_the_same_definition_over_the_true_people(demo_night, place, linked, true_people, fall_sources):
    settings, _ = demo_night
    by_linkage = _district_totals(_falls_03_expected(settings, fall_sources, linked, place))
    by_truth = _district_totals(_falls_03_expected(settings, fall_sources, true_people, place))
    assert by_truth[0] > 0
    assert abs(by_linkage[1] - by_truth[1]) <= max(3, 0.1 * by_truth[1]), (by_linkage, by_truth)
    assert abs(by_linkage[0] - by_truth[0]) <= max(3, 0.2 * by_truth[0]), (by_linkage, by_truth)


def _term_end(academic_year: str, term: str) -> date:
    start = int(academic_year[:4])
    return {"AUTUMN": date(start, 12, 31), "SPRING": date(start + 1, 3, 31), "SUMMER": date(start + 1, 7, 31)}[term.upper()]


def _month_back(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    return date(y, m + 1, min(d.day, 28)) if d.day > 28 else date(y, m + 1, d.day)


@pytest.fixture(scope="module")
def family_sources(demo_night, fall_sources):
    """Every person record in use, with its date, date of birth and postcode; the criteria
    evidence; and the school attendance rows."""
    settings, _ = demo_night
    R = []  # (contract, file, row, day, dob, postcode, kind)
    for contract, r, day, *_ in fall_sources[0]:
        R.append((contract, r["_file"], r["_row"], day, r["date_of_birth"], r["postcode"], None))
    police = _incremental(settings, "county_police", "incidents", ["occurrence_id", "nominal_id"], encoding="cp1252")
    for r in police:
        kind = ("crime_asb" if (r["occurrence_type"], r["person_role"]) == ("ASB", "OFFENDER")
                else "domestic_abuse" if r["occurrence_type"] == "DOMESTIC_ABUSE" else None)
        R.append(("county_police__incidents", r["_file"], r["_row"], _as_date(r["occurrence_datetime"]),
                  r["date_of_birth"], r["postcode"], ("police", kind)))
    for r in _incremental(settings, "county_council", "children_social_care_referrals", ["referral_id"], encoding="utf-8-sig"):
        R.append(("county_council__children_social_care_referrals", r["_file"], r["_row"], _as_date(r["referral_datetime"]),
                  r["date_of_birth"], r["postcode"], ("child_in_need", "child_in_need")))
    for r in _incremental(settings, "county_council", "adult_social_care_referrals", ["referral_id"], encoding="utf-8-sig"):
        R.append(("county_council__adult_social_care_referrals", r["_file"], r["_row"], _as_date(r["referral_datetime"]),
                  r["date_of_birth"], r["postcode"], ("asc", "adult_social_care" if r["outcome"] == "ASSESSMENT" else None)))
    for r in _snapshot(settings, "riverside_council", "homelessness_cases"):
        R.append(("riverside_council__homelessness_cases", r["_file"], r["_row"], _as_date(r["approach_date"]),
                  r["date_of_birth"], r["postcode"], ("homeless", "homelessness")))
    for r in _snapshot(settings, "riverside_council", "housing_adaptations"):
        R.append(("riverside_council__housing_adaptations", r["_file"], r["_row"], _as_date(r["referral_date"]),
                  r["date_of_birth"], r["postcode"], None))
    for r in _incremental(settings, "riverside_fire", "safe_and_well_visits", ["visit_id"], encoding="cp1252"):
        R.append(("riverside_fire__safe_and_well_visits", r["_file"], r["_row"], _as_date(r["visit_date"]),
                  r["date_of_birth"], None, None))
    for r in _snapshot(settings, "riverside_agewell", "falls_class_referrals"):
        R.append(("riverside_agewell__falls_class_referrals", r["_file"], r["_row"], _as_date(r["referral_date"]),
                  r["date_of_birth"], r["postcode"], None))
    school = _snapshot(settings, "county_council", "school_attendance", encoding="utf-8-sig")
    for r in school:
        R.append(("county_council__school_attendance", r["_file"], r["_row"], _term_end(r["academic_year"], r["term"]),
                  r["date_of_birth"], r["postcode"], None))
    return R, school


def _sf_expected(settings, family_sources, people, place, min_criteria=2, window_months=6):
    records, school = family_sources
    coverage = {}
    for contract, _f, _r, day, *_ in records:
        lo, hi = coverage.get(contract, (day, day))
        coverage[contract] = (min(lo, day), max(hi, day))
    sf = [coverage[c] for c in ("county_police__incidents", "county_council__children_social_care_referrals",
                                "county_council__adult_social_care_referrals", "riverside_council__homelessness_cases")]
    first, last = max(c[0] for c in sf), min(c[1] for c in sf)
    quarters = [(s, e) for _k, s, e in _complete_periods(first, last, kinds=("quarter",))
                if _month_back(e + timedelta(days=1), window_months) >= first]
    linked_records = []
    for contract, f, r, day, dob, postcode, kind in records:
        who = people.get((contract, f, r))
        if who:
            linked_records.append((who, day, _as_date(dob), _ward(place, postcode), kind, contract))
    pupils = []
    for r in school:
        who = people.get(("county_council__school_attendance", r["_file"], r["_row"]))
        if who:
            pupils.append((who, _term_end(r["academic_year"], r["term"]), int(r["attended_sessions"]), int(r["possible_sessions"])))
    families = {}  # quarter start -> {household: ward}
    for start, end in quarters:
        window = _month_back(end + timedelta(days=1), window_months)
        criteria = defaultdict(set)
        for (person, household), day, _dob, _ward_code, kind, _c in linked_records:
            if kind and kind[1] and window <= day <= end:
                criteria[household].add(kind[1])
        sessions = defaultdict(lambda: [0, 0])
        for (person, household), term_end, attended, possible in pupils:
            if window <= term_end <= end:
                sessions[(person, household)][0] += attended
                sessions[(person, household)][1] += possible
        for (person, household), (attended, possible) in sessions.items():
            if attended < 0.9 * possible:
                criteria[household].add("school_attendance")
        children = {household for (person, household), _day, dob, *_ in linked_records
                    if dob and dob <= end and _age(dob, end) < 18}
        homes = {}
        for (person, household), day, _dob, ward, _kind, contract in sorted(linked_records, key=lambda x: (x[1], x[5])):
            if ward and day <= end:
                homes[household] = ward
        families[start] = {h: homes.get(h) for h, met in criteria.items()
                           if len(met) >= min_criteria and h in children and homes.get(h)}
    sf01 = {}
    district_of = place[1]
    for start, end in quarters:
        counts = defaultdict(int)
        for household, ward in families[start].items():
            counts[("ward", ward)] += 1
            counts[("district", district_of[ward])] += 1
        for ward, district in district_of.items():
            sf01[("quarter", start, "ward", ward, "persons")] = counts[("ward", ward)]
            sf01[("quarter", start, "district", district, "persons")] = counts[("district", district)]
    # SF-02: twelve months on
    term_ends = sorted({t for _w, t, _a, _p in pupils})
    police = coverage["county_police__incidents"]
    units, periods = [], []
    for _k, start, end in _complete_periods(police[0], police[1], kinds=("quarter",)):
        identified = date(start.year - 1, start.month, 1)
        last_term = max((t for t in term_ends if t <= end), default=None)
        if identified not in families or not families[identified] and identified not in [q[0] for q in quarters]:
            continue
        if last_term is None or last_term <= _month_back(end, 12):
            continue
        periods.append(("quarter", start, end))
        since = _month_back(end + timedelta(days=1), 6)
        troubled = {household for (p, household), day, _d, _w, kind, _c in linked_records
                    if kind and kind[0] == "police" and since <= day <= end}
        low = {household for (p, household), t, attended, possible in pupils
               if t == last_term and attended < 0.9 * possible}
        for household, ward in families[identified].items():
            units.append((start, ward, {}, household not in troubled and household not in low))
    sf02 = _percentages(units, periods, place, [])
    return sf01, sf02


def test_sf_01_and_sf_02_equal_an_independent_computation_over_the_linked_households(
        demo_night, place, linked, family_sources):
    settings, _ = demo_night
    sf01, sf02 = _sf_expected(settings, family_sources, linked, place)
    got = _mart(settings, "SF-01")
    assert set(got) == set(sf01)
    for key, count in sf01.items():
        numerator, denominator, value, lower, upper, unit = got[key]
        assert (numerator, denominator, value, lower, upper, unit) == (count, None, float(count), None, None, "families"), key
    assert sum(sf01.values()) > 0
    _assert_percentages_equal(_mart(settings, "SF-02"), sf02, "SF-02")


def test_sf_01_families_are_close_to_the_true_households(demo_night, place, linked, true_people, family_sources):
    settings, _ = demo_night
    by_linkage, _ = _sf_expected(settings, family_sources, linked, place)
    by_truth, _ = _sf_expected(settings, family_sources, true_people, place)
    total = lambda cells: sum(v for (k, s, gt, g, b), v in cells.items() if gt == "district")
    assert total(by_truth) > 0
    assert abs(total(by_linkage) - total(by_truth)) <= 0.25 * total(by_truth), (total(by_linkage), total(by_truth))


def test_the_falls_pathway_mart_holds_every_fall_of_people_65_plus_with_their_linked_id(demo_night, linked, fall_sources):
    settings, _ = demo_night
    expected = defaultdict(int)
    names = {"riverside_acute__emergency_admissions": "fall_admission", "riverside_acute__ae_attendances": "fall_ae_attendance",
             "county_ambulance__incidents": "fall_ambulance_incident"}
    people = set()
    for contract, r, day, _p, _id, _sex, fall in fall_sources[0]:
        if fall and _age(_as_date(r["date_of_birth"]), day) >= 65:
            expected[(names[contract], date(day.year, day.month, 1))] += 1
            people.add(linked[(contract, r["_file"], r["_row"])][0])
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        got = dict(((t, m), n) for t, m, n in con.execute(
            """select event_type, event_month, count(*) from marts.fct_falls_pathway_events
               where event_type in ('fall_admission', 'fall_ae_attendance', 'fall_ambulance_incident') group by all""").fetchall())
        mart_people = {p for p, in con.execute(
            "select distinct person_id from marts.fct_falls_pathway_events where event_type in ('fall_admission', 'fall_ae_attendance', 'fall_ambulance_incident')").fetchall()}
        unknown = con.execute(
            """select count(*) from marts.fct_falls_pathway_events f
               where not exists (select 1 from linkage.persons p where p.person_id = f.person_id)""").fetchall()[0][0]
    assert got == dict(expected)
    assert mart_people == people
    assert unknown == 0
