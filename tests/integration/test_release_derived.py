"""Derived figures of an aggregate release are computed from its protected counts, by the
warehouse's statistics functions, and checked here against the independent Python oracle
(tests/oracles/phe_methods.py) on the published counts."""

from __future__ import annotations

import itertools
import math
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

import orchestration.partnership.releases.protection as protection
from orchestration.partnership.releases.protocols import load_protocol
from orchestration.partnership.settings import PROJECT_ROOT
from tests.oracles import phe_methods as phe

pytestmark = pytest.mark.dbt_free

FALLS_BOARD = load_protocol(PROJECT_ROOT / "contracts" / "protocols" / "falls-board.yaml")
OUT = FALLS_BOARD.outputs[0]
BANDS = [("65-69", 5500.0), ("70-74", 5000.0), ("75-79", 4000.0), ("80-84", 2500.0), ("85-89", 1500.0), ("90+", 1000.0)]
Q3 = (date(2026, 7, 1), date(2026, 9, 30))


def _value_rows():
    """FALLS-02 as the issue found it (8 of 164: published 10 of 165), a FALLS-01 district quarter
    with its bands (events 9, 12, 10, 8, 0, 11: 50 in all), a ward too small for anything."""
    rows = [
        ("FALLS-02", "quarter", *Q3, "district", "E07900001", "Riverside", "persons", 8, 164, 100 * 8 / 164, 1.0, 2.0, "percent"),
        ("FALLS-02", "quarter", *Q3, "ward", "E05900001", "North", "persons", 3, 60, 5.0, 1.0, 2.0, "percent"),
        ("FALLS-02", "quarter", *Q3, "ward", "E05900002", "South", "persons", 5, 104, 4.8, 1.0, 2.0, "percent"),
        ("FALLS-01", "quarter", *Q3, "district", "E07900001", "Riverside", "persons", 50, 3000, 1234.5, 1000.0, 1500.0,
         "per 100,000 person-years"),
    ]
    return rows


@pytest.fixture
def warehouse(tmp_path, statistics_functions) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        for statement in statistics_functions:
            con.execute(statement)
        con.execute("create schema marts")
        con.execute("""create table marts.fct_indicator_values (indicator_id varchar, period_type varchar,
            period_start date, period_end date, geography_type varchar, geography_code varchar, geography_name varchar,
            breakdown varchar, numerator bigint, denominator bigint, value double, lower_ci double, upper_ci double,
            unit varchar)""")
        con.executemany("insert into marts.fct_indicator_values values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        _value_rows())
        con.execute("""create table marts.fct_indicator_bands (indicator_id varchar, period_type varchar,
            period_start date, period_end date, geography_type varchar, geography_code varchar, breakdown varchar,
            band varchar, standard_weight double, residents bigint, person_years double, events bigint)""")
        con.executemany("insert into marts.fct_indicator_bands values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [("FALLS-01", "quarter", *Q3, "district", "E07900001", "persons", band, w, 500, 125.0, x)
                         for (band, w), x in zip(BANDS, [9, 12, 10, 8, 0, 11])])
    return path


def _protect(path: Path) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        df = con.sql("select * from marts.fct_indicator_values order by all").pl()
        return protection.protect(con, df, OUT, FALLS_BOARD)


def _row(df: pl.DataFrame, indicator: str, code: str) -> dict:
    return df.filter((pl.col("indicator_id") == indicator) & (pl.col("geography_code") == code)
                     & (pl.col("period_type") == "quarter")).row(0, named=True)


def test_a_published_percentage_and_its_limits_are_those_of_the_published_counts(warehouse):
    row = _row(_protect(warehouse), "FALLS-02", "E07900001")
    assert (row["numerator"], row["denominator"]) == (10, 165)
    assert math.isclose(row["value"], 100 * 10 / 165, rel_tol=1e-12)
    assert math.isclose(row["lower_ci"], 100 * phe.wilson_lower(10, 165), rel_tol=1e-9)
    assert math.isclose(row["upper_ci"], 100 * phe.wilson_upper(10, 165), rel_tol=1e-9)


def test_the_issue_attack_on_a_percentage_finds_the_published_counts_not_the_true_ones(warehouse):
    """Every numerator 8-12 over 163-167 is consistent with the published counts; the value the
    warehouse holds singles out 8/164, the published value only 10/165 (what was published)."""
    row = _row(_protect(warehouse), "FALLS-02", "E07900001")
    box = list(itertools.product(range(8, 13), range(163, 168)))
    assert [(x, n) for x, n in box if math.isclose(100 * x / n, 100 * 8 / 164, rel_tol=1e-12)] == [(8, 164)]
    assert [(x, n) for x, n in box if math.isclose(100 * x / n, row["value"], rel_tol=1e-12)] == [(10, 165)]


def test_a_standardised_rate_is_the_rate_of_band_counts_rounded_to_the_published_count(warehouse):
    """Oracle: some choice of each band's count rounded down or up to a multiple of 5, adding up to
    the published numerator, gives exactly the published rate and Dobson limits (phe_methods.dsr)."""
    row = _row(_protect(warehouse), "FALLS-01", "E07900001")
    assert row["numerator"] == 50 and row["value"] is not None
    true = [9, 12, 10, 8, 0, 11]
    found = []
    for ups in itertools.product(*[(x - x % 5,) if x % 5 == 0 else (x - x % 5, x - x % 5 + 5) for x in true]):
        if sum(ups) != row["numerator"]:
            continue
        r = phe.dsr(list(ups), [125.0] * 6, [w for _, w in BANDS], multiplier=100_000)
        if all(math.isclose(a, b, rel_tol=1e-9) for a, b in ((r.value, row["value"]), (r.lower, row["lower_ci"]),
                                                             (r.upper, row["upper_ci"]))):
            found.append(ups)
    assert len(found) == 1
    exact = phe.dsr(true, [125.0] * 6, [w for _, w in BANDS], multiplier=100_000)
    assert not math.isclose(exact.value, row["value"], rel_tol=1e-9), "the warehouse's exact rate is not what leaves"


def test_a_standardised_rate_with_a_band_in_the_suppression_range_is_withheld(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_indicator_bands set events = 3 where band = '85-89'")
        con.execute("update marts.fct_indicator_values set numerator = 53 where indicator_id = 'FALLS-01'")
    row = _row(_protect(warehouse), "FALLS-01", "E07900001")
    assert row["numerator"] == 55 and not row["derived_withheld"]
    assert (row["value"], row["lower_ci"], row["upper_ci"]) == (None, None, None)


def test_figures_of_suppressed_counts_are_withheld_and_no_warehouse_figure_leaves(warehouse):
    df = _protect(warehouse)
    north = _row(df, "FALLS-02", "E05900001")
    assert north["numerator_suppressed"] and north["derived_withheld"] and north["value"] is None
    for r in df.iter_rows(named=True):
        assert r["value"] not in (5.0, 4.8, 1234.5, 100 * 8 / 164)


def test_without_the_statistics_functions_nothing_is_computed(tmp_path):
    import orchestration.partnership.releases.derived as derived

    path = tmp_path / "bare.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.fct_indicator_values as select * from (values "
                    "('FALLS-02', 'quarter', date '2026-07-01', date '2026-09-30', 'district', 'E07900001', 'R', "
                    "'persons', 20, 100, 20.0, 1.0, 2.0, 'percent')) t(indicator_id, period_type, period_start, "
                    "period_end, geography_type, geography_code, geography_name, breakdown, numerator, denominator, "
                    "value, lower_ci, upper_ci, unit)")
    with pytest.raises(derived.StatisticsMissing, match="statistics functions"):
        _protect(path)


def test_a_cell_released_in_two_tables_is_hidden_in_both_or_in_neither(warehouse):
    """Two outputs of the same source and columns: the same cell twice is one figure. The wards
    alone would publish South's 12 beside North's suppressed 3; with the district (15) in the
    other table, South is hidden with North there, and so here too."""
    import copy

    from orchestration.partnership.releases.protocols import Protocol

    doc = copy.deepcopy(FALLS_BOARD.doc)
    first = {**doc["outputs"][0], "derived_from_counts": [], "row_filters": {"indicator_id": ["FALLS-02"]},
             "columns": [c for c in OUT["columns"] if c not in ("value", "lower_ci", "upper_ci")]}
    second = {**first, "table": "indicator_values_again", "row_filters": {"indicator_id": ["FALLS-02"],
                                                                           "geography_type": ["ward"]}}
    doc["outputs"] = [first, second]
    doc["disclosure_control"].pop("pooled_periods")
    protocol = Protocol(doc, FALLS_BOARD.path)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update marts.fct_indicator_values set numerator = 12 where geography_code = 'E05900002'")
        con.execute("update marts.fct_indicator_values set numerator = 15 where geography_code = 'E07900001' "
                    "and indicator_id = 'FALLS-02'")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.sql("select * exclude (value, lower_ci, upper_ci) from marts.fct_indicator_values "
                       "where indicator_id = 'FALLS-02' order by all").pl()
        out = protection.protect_tables(con, protocol, {"indicator_values": rows,
                                                        "indicator_values_again": rows.filter(pl.col("geography_type") == "ward")})
        alone = protection.protect_tables(con, Protocol({**doc, "outputs": [second]}, FALLS_BOARD.path),
                                          {"indicator_values_again": rows.filter(pl.col("geography_type") == "ward")})
    assert alone["indicator_values_again"]["numerator_suppressed"].to_list() == [True, False]
    one, two = out["indicator_values"], out["indicator_values_again"]
    for r in two.iter_rows(named=True):
        same = one.filter(pl.col("geography_code") == r["geography_code"]).row(0, named=True)
        assert (same["numerator"], same["numerator_suppressed"]) == (r["numerator"], r["numerator_suppressed"])
    assert two["numerator_suppressed"].all()
