"""The SQL statistics macros (dbt_project/macros/statistics/) themselves reproduce
the published PHEindicatormethods test vectors, and the static reference seeds
(dbt_project/seeds/reference/) load and pass their data tests.

One module-scoped fixture runs dbt in-process against a throw-away DuckDB
warehouse, in a temporary project that links the real macros and reference
seeds (see _statistics_project):
  1. `dbt build --select path:seeds/reference` (seeds + their data tests);
  2. `dbt compile --inline` of SQL that calls the macros over literal table names.
The compiled SQL is then executed in the same warehouse, over the oracle inputs
joined to the seeded ESP2013 weights, and every value and limit is compared to
the oracle CSVs to 1e-6 relative. The same compile renders the generic test of
required columns (macros/tests/not_null_columns.sql), run on rows with known nulls.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import duckdb
import pytest

from tests.statistics_project import FUNCTIONS_MARKER, invoke, statistics_project

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO_ROOT / "dbt_project"
_IN_REPO = REPO_ROOT / "tests" / "oracles" / "phe"
_SHARED = REPO_ROOT.parent / "shared" / "oracles" / "phe"
ORACLE_DIR = _IN_REPO if (_IN_REPO / "dsr_expected_results.csv").exists() else _SHARED
REL_TOL = 1e-6

QUERY_MARKER = "-- @@query:"

# SQL calling the macros, one statement per query, split after compilation.
# Confidence levels and multipliers are compile-time macro arguments.
MACRO_SQL = """
-- @@query:byars_wilson
select row_no,
    {{ byars_lower('x', 0.95) }} as byars_lower_95,
    {{ byars_upper('x', 0.95) }} as byars_upper_95,
    {{ byars_lower('x', 0.998) }} as byars_lower_99_8,
    {{ byars_upper('x', 99.8) }} as byars_upper_99_8,
    {{ wilson_lower('x', 'n', 0.95) }} as wilson_lower_95,
    {{ wilson_upper('x', 'n', 0.95) }} as wilson_upper_95,
    {{ wilson_lower('x', 'n', 0.998) }} as wilson_lower_99_8,
    {{ wilson_upper('x', 'n', 0.998) }} as wilson_upper_99_8,
    {{ z_score(0.95) }} as z_95,
    {{ z_score(0.998) }} as z_99_8
from oracle_byars_wilson
;
-- @@query:dsr_independent
select i.area,
    sum(i.pop) as total_pop,
    {{ dsr_with_dobson('i.event_count', 'i.pop', 'e.weight', multiplier=100000,
                       confidence=[0.95, 0.998], column_prefix='per100000_') }},
    {{ dsr_with_dobson('i.event_count', 'i.pop', 'e.weight', multiplier=10000,
                       confidence=[0.95, 0.998], column_prefix='per10000_') }},
    {{ dsr_value('i.event_count', 'i.pop', 'e.weight', 100000, min_count=5) }} as value_min5
from oracle_dsr_inputs i
join esp_bands e on e.band_no = i.band_no
group by i.area
;
-- @@query:dsr_non_independent
select i.area,
    sum(i.pop) as total_pop,
    sum(i.event_count) as count_column_total,
    {{ dsr_with_dobson(event_frequency_events(['i.f1', 'i.f2', 'i.f3', 'i.f4']), 'i.pop', 'e.weight',
                       multiplier=100000, confidence=[0.95, 0.998], column_prefix='per100000_',
                       squared_events_expr=event_frequency_squares(['i.f1', 'i.f2', 'i.f3', 'i.f4'])) }},
    {{ dobson_lower('sum(i.event_count)',
                    dsr_value('i.event_count', 'i.pop', 'e.weight', 100000),
                    dsr_variance('i.event_count', 'i.pop', 'e.weight', 100000,
                                 squared_events_expr=event_frequency_squares({1: 'i.f1', 2: 'i.f2', 3: 'i.f3', 4: 'i.f4'})),
                    0.95) }} as parts_lower_95,
    {{ dobson_upper('sum(i.event_count)',
                    dsr_value('i.event_count', 'i.pop', 'e.weight', 100000),
                    dsr_variance('i.event_count', 'i.pop', 'e.weight', 100000),
                    0.95) }} as independent_upper_95
from oracle_dsr_inputs_nonind i
join esp_bands e on e.band_no = i.band_no
group by i.area
;
-- @@query:not_null_columns
{{ test_not_null_columns('nullable_rows', ['a', 'b', 'c']) }}
;
-- @@query:columns_between
{{ test_columns_between('bounded_rows', ['v', 'lo', 'hi'], 0, 100) }}
"""


def _read(name: str) -> list[dict[str, str]]:
    with open(ORACLE_DIR / name, newline="") as fh:
        return list(csv.DictReader(fh))


def _num(text: str) -> float | None:
    return float(text) if text.strip() else None


def assert_close(actual, expected, what: str) -> None:
    if expected is None:
        assert actual is None, f"{what}: expected null (NA), got {actual!r}"
        return
    assert actual is not None, f"{what}: expected {expected!r}, got null"
    assert math.isclose(actual, expected, rel_tol=REL_TOL), f"{what}: {actual!r} != {expected!r}"


_statistics_project = statistics_project
_invoke = invoke


@pytest.fixture(scope="module")
def dbt_run(tmp_path_factory):
    """Run dbt (seed build + macro compile) once; return the warehouse path,
    the build result and the compiled SQL per query name."""
    tmp = tmp_path_factory.mktemp("dbt_statistics")
    reference_dir = tmp / "reference"  # empty: only the committed seeds load
    reference_dir.mkdir()
    warehouse = tmp / "warehouse.duckdb"
    env = {
        "PARTNERSHIP_WAREHOUSE": str(warehouse),
        "PARTNERSHIP_REFERENCE_DIR": str(reference_dir),
        "DBT_TARGET_PATH": str(tmp / "target"),
        "DBT_LOG_PATH": str(tmp / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    project = _statistics_project(tmp)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        build = _invoke(project, ["build", "--select", "path:seeds/reference", "--quiet"])
        compiled = _invoke(project, ["compile", "--inline", MACRO_SQL, "--quiet"])
        functions = _invoke(project, ["compile", "--inline",
                                      f"{{{{ statistics_functions_sql() | join('\\n{FUNCTIONS_MARKER}\\n') }}}}", "--quiet"])
        bad_confidence_log: list[str] = []
        bad_confidence = _invoke(project, ["compile", "--inline", "select {{ z_score(0.9) }}", "--quiet"],
                                 bad_confidence_log)
    assert compiled.success, compiled.exception
    sql = compiled.result.results[0].node.compiled_code
    queries: dict[str, str] = {}
    for chunk in sql.split(QUERY_MARKER)[1:]:
        name, _, body = chunk.partition("\n")
        queries[name.strip().rstrip("@")] = body.strip().rstrip(";")
    assert functions.success, functions.exception
    statements = [x.strip() for x in functions.result.results[0].node.compiled_code.split(FUNCTIONS_MARKER) if x.strip()]
    return {"warehouse": warehouse, "build": build, "queries": queries, "functions": statements, "bad_confidence": bad_confidence,
            "bad_confidence_log": "\n".join(bad_confidence_log)}


@pytest.fixture(scope="module")
def warehouse(dbt_run):
    """The dbt-built warehouse plus the oracle inputs as plain tables."""
    con = duckdb.connect(str(dbt_run["warehouse"]))
    # Age bands matched to ESP2013 weights by position (band_no 1..19), as PHE
    # does: the test data's labels are not clean ('55-69' is 55-59, '00-04').
    con.execute(
        "create table esp_bands as select row_number() over (order by age_from) as band_no, "
        "age_band, weight from reference.esp2013"
    )
    con.execute("create table oracle_byars_wilson (row_no integer, x double, n double)")
    con.executemany(
        "insert into oracle_byars_wilson values (?, ?, ?)",
        [(i, float(r["x"]), _num(r["n"])) for i, r in enumerate(_read("byars_wilson_expected.csv"))],
    )
    con.execute(
        "create table oracle_dsr_inputs (area varchar, band_no integer, event_count integer, pop integer)"
    )
    con.execute(
        "create table oracle_dsr_inputs_nonind (area varchar, band_no integer, event_count integer, "
        "pop integer, f1 integer, f2 integer, f3 integer, f4 integer)"
    )
    for table, name, extra in (
        ("oracle_dsr_inputs", "dsr_inputs_multiarea.csv", []),
        ("oracle_dsr_inputs_nonind", "dsr_inputs_non_independent.csv", ["f1", "f2", "f3", "f4"]),
    ):
        band_no: dict[str, int] = {}
        rows = []
        for r in _read(name):
            band_no[r["area"]] = band_no.get(r["area"], 0) + 1
            rows.append((r["area"], band_no[r["area"]], _num(r["count"]), float(r["pop"]),
                         *(_num(r[c]) for c in extra)))
        con.executemany(f"insert into {table} values ({', '.join('?' * len(rows[0]))})", rows)
    yield con
    con.close()


def _fetch(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


# ---------------------------------------------------------------- seeds
def test_reference_seeds_build_and_pass_their_data_tests(dbt_run):
    build = dbt_run["build"]
    assert build.success, build.exception
    results = build.result.results
    seeds = {r.node.name for r in results if r.node.resource_type == "seed"}
    assert seeds == {"esp2013", "icd10_code_ranges", "admission_methods", "bank_holidays_england_wales"}
    tests = [r for r in results if r.node.resource_type == "test"]
    assert len(tests) >= 20
    assert all(str(r.status) == "pass" for r in tests), [(r.node.name, r.status) for r in tests]


def test_reference_seed_contents(warehouse):
    esp = warehouse.execute(
        "select age_band, age_from, age_to, weight from reference.esp2013 order by age_from"
    ).fetchall()
    oracle = [(r["ageband"], int(r["esp2013"])) for r in _read("esp2013.csv")]
    assert [(b, w) for b, _, _, w in esp] == oracle
    assert esp[0][1:3] == (0, 4) and esp[-1][:3] == ("90+", 90, 120)
    assert all(esp[i + 1][1] == esp[i][2] + 1 for i in range(len(esp) - 2))

    methods = dict(warehouse.execute(
        "select admission_method, is_emergency from reference.admission_methods").fetchall())
    assert methods["21"] is True and methods["2A"] is True and methods["11"] is False
    assert {m for m, e in methods.items() if e} == {"21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28"}
    assert warehouse.execute(
        "select data_type from information_schema.columns where table_schema = 'reference' "
        "and table_name = 'admission_methods' and column_name = 'admission_method'"
    ).fetchone()[0] == "VARCHAR"

    holidays = warehouse.execute(
        "select cast(date as varchar), name from reference.bank_holidays_england_wales").fetchall()
    dates = {d for d, _ in holidays}
    assert len(holidays) == 51
    assert {"2022-06-03", "2022-09-19", "2023-05-08", "2024-03-29", "2025-04-21",
            "2026-12-28", "2027-12-27", "2027-12-28"} <= dates
    assert warehouse.execute(
        "select count(*) from reference.bank_holidays_england_wales where isodow(date) > 5"
    ).fetchone()[0] == 0

    # FALLS-01 code matching: first three characters against 3-character ranges.
    matched = warehouse.execute(
        """select c.code, string_agg(r.code_list, ',' order by r.code_list)
           from (values ('S72.0'), ('s720'), ('T98.3'), ('T99'), ('W19X'), ('W20.1')) c(code)
           left join reference.icd10_code_ranges r
             on upper(substr(trim(c.code), 1, 3)) between r.range_start and r.range_end
           group by c.code"""
    ).fetchall()
    assert dict(matched) == {"S72.0": "injury_S00_T98", "s720": "injury_S00_T98", "T98.3": "injury_S00_T98",
                             "T99": None, "W19X": "falls_W00_W19", "W20.1": None}


# ---------------------------------------------------------------- macros
def test_z_score_rejects_unsupported_confidence(dbt_run):
    result = dbt_run["bad_confidence"]
    assert not result.success
    assert "z_score: unsupported confidence 0.9" in dbt_run["bad_confidence_log"]


def test_byars_and_wilson_macros_reproduce_phe(dbt_run, warehouse):
    got = {r["row_no"]: r for r in _fetch(warehouse, dbt_run["queries"]["byars_wilson"])}
    expected = _read("byars_wilson_expected.csv")
    assert len(got) == len(expected) == 13
    for i, row in enumerate(expected):
        suffix = "95" if row["confidence"] == "95%" else "99_8"
        method = row["method"].lower()
        assert_close(got[i][f"{method}_lower_{suffix}"], _num(row["lowercl"]), f"row {i} lower")
        assert_close(got[i][f"{method}_upper_{suffix}"], _num(row["uppercl"]), f"row {i} upper")
    first = got[0]
    assert float(first["z_95"]) == pytest.approx(1.959963984540054, rel=1e-15)
    assert float(first["z_99_8"]) == pytest.approx(3.090232306167813, rel=1e-15)


def _expected_dsr_rows():
    # testdata_1976 is standardised to ESP1976 with inputs not published: left out.
    return [r for r in _read("dsr_expected_results.csv") if r["area"] != "testdata_1976"]


def _check_dsr(got: dict, row: dict, prefix: str) -> None:
    what = f"{row['area']} {row['statistic']}"
    assert got[f"{prefix}total_count"] == float(row["total_count"]), what
    assert_close(got[f"{prefix}value"], _num(row["value"]), f"{what} value")
    for level, lower, upper in (("95", "lower95_0cl", "upper95_0cl"), ("99_8", "lower99_8cl", "upper99_8cl")):
        assert_close(got[f"{prefix}lower_ci_{level}"], _num(row[lower]), f"{what} {lower}")
        assert_close(got[f"{prefix}upper_ci_{level}"], _num(row[upper]), f"{what} {upper}")


def test_dsr_macros_reproduce_phe_independent_events(dbt_run, warehouse):
    got = {r["area"]: r for r in _fetch(warehouse, dbt_run["queries"]["dsr_independent"])}
    checked = 0
    for row in _expected_dsr_rows():
        if row["area"] not in got:
            continue
        if row["statistic"].startswith("dsr per "):  # 'dsr per 10000' / 'dsr per 100000'
            _check_dsr(got[row["area"]], row, f"per{row['statistic'].split()[-1]}_")
        else:  # 'dsr NA for total count < 10': null at both multipliers
            for multiplier in ("10000", "100000"):
                _check_dsr(got[row["area"]], row, f"per{multiplier}_")
        assert got[row["area"]]["total_pop"] == float(row["total_pop"])
        checked += 1
    assert checked == 6
    # min_count is an argument: with 5, the 9-event area gets a value.
    assert got["testdata_tiny"]["value_min5"] is not None


def test_dsr_macros_reproduce_phe_non_independent_events(dbt_run, warehouse):
    got = {r["area"]: r for r in _fetch(warehouse, dbt_run["queries"]["dsr_non_independent"])}
    rows = [r for r in _expected_dsr_rows() if r["area"].startswith("testdata_nonind")]
    assert {r["area"] for r in rows} == set(got) and len(rows) == 4
    for row in rows:
        g = got[row["area"]]
        _check_dsr(g, row, "per100000_")
        assert g["total_pop"] == float(row["total_pop"])
        assert g["count_column_total"] == g["per100000_total_count"]
        # composing dsr_value / dsr_variance / dobson_lower by hand gives the same
        assert_close(g["parts_lower_95"], _num(row["lower95_0cl"]), f"{row['area']} parts lower")
        if g["per100000_value"] is not None:  # adjusted limits are wider than Poisson ones
            assert g["independent_upper_95"] < g["per100000_upper_ci_95"]


# ---------------------------------------------------------------- the warehouse's statistics functions
def test_the_warehouse_functions_the_release_engine_uses_reproduce_phe(dbt_run, warehouse):
    """The same macros rendered as functions of the warehouse (schema stats): Wilson limits as
    percentages, and the 95% DSR with Dobson limits per 100,000 as aggregates over band rows."""
    for statement in dbt_run["functions"]:
        warehouse.execute(statement)
    rows = _read("byars_wilson_expected.csv")
    wilson = [(i, r) for i, r in enumerate(rows) if r["method"] == "Wilson" and r["confidence"] == "95%"]
    assert wilson
    for i, r in wilson:
        x, n = float(r["x"]), float(r["n"])
        lo, hi = warehouse.execute("select stats.percentage_lower_ci(?, ?), stats.percentage_upper_ci(?, ?)",
                                   [x, n, x, n]).fetchall()[0]
        # exactly 0 at x = 0 and 100 at x = n, where floating arithmetic gives a few 1e-15 either side
        assert lo == 0.0 if x == 0 else math.isclose(lo, _num(r["lowercl"]) * 100, rel_tol=REL_TOL), f"row {i} lower"
        assert hi == 100.0 if x == n else math.isclose(hi, _num(r["uppercl"]) * 100, rel_tol=REL_TOL), f"row {i} upper"
    assert warehouse.execute("select stats.percentage_value(8, 164), stats.percentage_lower_ci(0, 5), "
                             "stats.percentage_upper_ci(5, 5), stats.percentage_value(0, 0)").fetchall()[0] == (
        100 * 8 / 164, 0.0, 100.0, None)
    got = {r["area"]: r for r in _fetch(warehouse, """
        select i.area, stats.dsr_value(i.event_count, i.pop, e.weight) as value,
               stats.dsr_lower_ci(i.event_count, i.pop, e.weight) as lower_ci,
               stats.dsr_upper_ci(i.event_count, i.pop, e.weight) as upper_ci
        from oracle_dsr_inputs i join esp_bands e on e.band_no = i.band_no group by i.area""")}
    checked = 0
    for row in _expected_dsr_rows():
        if row["area"] in got and row["statistic"] in ("dsr per 100000", "dsr NA for total count < 10"):
            assert_close(got[row["area"]]["value"], _num(row["value"]), f"{row['area']} value")
            assert_close(got[row["area"]]["lower_ci"], _num(row["lower95_0cl"]), f"{row['area']} lower")
            assert_close(got[row["area"]]["upper_ci"], _num(row["upper95_0cl"]), f"{row['area']} upper")
            checked += 1
    assert checked >= 3


def test_the_required_columns_test_names_each_column_with_nulls_and_counts_them(dbt_run, warehouse):
    rows = [(1, "x", None), (None, "y", None), (3, None, None), (4, "z", 1)]
    warehouse.execute("create or replace table nullable_rows (a integer, b varchar, c integer)")
    warehouse.executemany("insert into nullable_rows values (?, ?, ?)", rows)
    expected = {col: sum(r[i] is None for r in rows) for i, col in enumerate("abc")}
    found = dict(warehouse.execute(dbt_run["queries"]["not_null_columns"]).fetchall())
    assert found == {c: n for c, n in expected.items() if n} == {"a": 1, "b": 1, "c": 3}
    warehouse.execute("delete from nullable_rows where a is null or b is null")
    warehouse.execute("update nullable_rows set c = 0")
    assert warehouse.execute(dbt_run["queries"]["not_null_columns"]).fetchall() == []


def test_the_bounds_test_names_each_column_with_values_outside_and_counts_them(dbt_run, warehouse):
    rows = [(50.0, 0.0, 100.0), (None, None, None), (100.5, -1.0, 100.0), (-0.1, 2.0, 101.0), (7.0, -3.0, 8.0)]
    warehouse.execute("create or replace table bounded_rows (v double, lo double, hi double)")
    warehouse.executemany("insert into bounded_rows values (?, ?, ?)", rows)
    expected = {col: sum(r[i] is not None and not 0 <= r[i] <= 100 for r in rows) for i, col in enumerate(("v", "lo", "hi"))}
    found = dict(warehouse.execute(dbt_run["queries"]["columns_between"]).fetchall())
    assert found == {c: n for c, n in expected.items() if n} == {"v": 2, "lo": 2, "hi": 1}
    warehouse.execute("delete from bounded_rows where v > 100 or v < 0 or lo < 0 or hi > 100")
    assert warehouse.execute(dbt_run["queries"]["columns_between"]).fetchall() == []
