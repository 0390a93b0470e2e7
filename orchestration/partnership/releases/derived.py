"""Rates, percentages and confidence limits computed from the counts a release publishes.

A figure derived from an unrounded count gives the count back (4.878049 % is 8/164 and nothing
else between 163 and 167; Dobson limits pin the count through Byar's), so the warehouse's values
are never released: every derived figure is computed again, after disclosure control, from the
protected counts only, by the warehouse's statistics functions (schema `stats`, created by dbt
from the same macros the indicator models use, so the method lives in one place):

- a percentage (unit `percent`): value and Wilson limits of the published numerator over the
  published denominator;
- a count (no denominator): the value is the published count;
- a directly standardised rate (rows with standardisation bands in `marts.fct_indicator_bands`):
  each band's events are rounded to the base so that they add up to the published numerator
  (controlled rounding: every band down to its multiple, then up by the base in order of the
  largest remainder, ties by band), and the rate and its Dobson limits are computed from those.
  The rate then reveals protected band counts at most: none is in the suppression range (the rate
  is withheld when one is), each is a multiple of the base within one base of the true count,
  and together they add up to the published count, so they tell nothing of the total that the
  published numerator does not.
- anything else: withheld.

A row with a suppressed count has no derived figure (`derived_withheld`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import duckdb
import polars as pl

from orchestration.partnership.releases.pooling import POOL_OF
from orchestration.partnership.releases.scope import SourceMissing
from orchestration.partnership.warehouse.connection import table_exists

BANDS_SOURCE = "marts.fct_indicator_bands"
STATS_SCHEMA = "stats"
FUNCTIONS = ("percentage_value", "percentage_lower_ci", "percentage_upper_ci", "dsr_value", "dsr_lower_ci",
             "dsr_upper_ci")
SHAPE = ("indicator_id", "period_type", "period_start", "period_end", "geography_type", "geography_code", "breakdown",
         "numerator", "denominator", "unit")
DERIVED = ("value", "lower_ci", "upper_ci")


class StatisticsMissing(SourceMissing):
    """The warehouse has no statistics functions (dbt has not built the indicator marts)."""


def functions_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """sha256 of the statistics functions' definitions: a release's derived figures depend on them."""
    rows = con.execute("select function_name, coalesce(macro_definition, '') from duckdb_functions() "
                       "where schema_name = ? order by all", [STATS_SCHEMA]).fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _check_functions(con: duckdb.DuckDBPyConnection) -> None:
    have = {r[0] for r in con.execute("select function_name from duckdb_functions() where schema_name = ?",
                                      [STATS_SCHEMA]).fetchall()}
    missing = sorted(set(FUNCTIONS) - have)
    if missing:
        raise StatisticsMissing(f"the warehouse's statistics functions {STATS_SCHEMA}.{', '.join(missing)} are missing "
                                "(built with marts.fct_indicator_bands by dbt): no derived figure can be computed")


def controlled_round(values: list[int], total: int, base: int) -> list[int] | None:
    """Multiples of `base`, each within one base of its value (a multiple stays as it is), adding
    up to `total`: all rounded down, then up in order of the largest remainder (ties: first).
    None when no such rounding exists (`total` is not the rounded sum of `values`)."""
    floors = [v - v % base for v in values]
    need = total - sum(floors)
    if need < 0 or need % base:
        return None
    up = sorted((i for i, v in enumerate(values) if v % base), key=lambda i: (-(values[i] % base), i))
    if need // base > len(up):
        return None
    out = list(floors)
    for i in up[: need // base]:
        out[i] += base
    return out


def recompute(con: duckdb.DuckDBPyConnection, df: pl.DataFrame, counts: list[str], derived: list[str],
              exact_numerator: pl.Series | None, low: int, high: int, base: int) -> pl.DataFrame:
    """`df` (counts protected, `derived_withheld` set) with every derived column computed from the
    published counts; columns this module cannot compute from them are withheld (empty)."""
    if not derived:
        return df
    computable = (set(derived) <= set(DERIVED) and set(counts) == {"numerator", "denominator"}
                  and all(c in df.columns for c in SHAPE))
    if not computable or df.height == 0:
        return df.with_columns([pl.lit(None, dtype=df.schema[d]).alias(d) for d in derived])
    _check_functions(con)
    rows = df.with_row_index("_r").with_columns(
        pl.when(pl.col("derived_withheld")).then(pl.lit("withheld"))
        .when(pl.col("unit") == "percent").then(pl.lit("percent"))
        .when(pl.col("denominator").is_null() & ~pl.col("denominator_suppressed")).then(pl.lit("count"))
        .otherwise(pl.lit("dsr")).alias("_method"))
    if POOL_OF not in rows.columns:
        rows = rows.with_columns(pl.lit(None, dtype=pl.Utf8).alias(POOL_OF))
    dsr = _standardised(con, rows.filter(pl.col("_method") == "dsr"), exact_numerator, low, high, base)
    published = rows.select("_r", "_method", "numerator", "denominator")
    con.register("_published", published.to_arrow())
    con.register("_dsr", dsr.to_arrow())
    try:
        s = STATS_SCHEMA
        figures = con.sql(f"""
            select p._r,
                case p._method when 'percent' then {s}.percentage_value(p.numerator, p.denominator)
                               when 'count' then cast(p.numerator as double)
                               when 'dsr' then d.value end as value,
                case p._method when 'percent' then {s}.percentage_lower_ci(p.numerator, p.denominator)
                               when 'dsr' then d.lower_ci end as lower_ci,
                case p._method when 'percent' then {s}.percentage_upper_ci(p.numerator, p.denominator)
                               when 'dsr' then d.upper_ci end as upper_ci
            from _published p left join _dsr d on d._r = p._r
            order by p._r""").pl()
    finally:
        con.unregister("_published")
        con.unregister("_dsr")
    return df.with_columns([figures[d].cast(df.schema[d]).alias(d) for d in derived])


def _standardised(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame, exact_numerator: pl.Series | None,
                  low: int, high: int, base: int) -> pl.DataFrame:
    """Rate and Dobson limits (columns _r, value, lower_ci, upper_ci) of each row from its bands'
    events, rounded under control to the row's published numerator; no row for a row whose bands
    are missing, do not add up to its exact count, or hold a count in the suppression range."""
    empty = pl.DataFrame(schema={"_r": pl.UInt32, "value": pl.Float64, "lower_ci": pl.Float64, "upper_ci": pl.Float64})
    if rows.height == 0 or not table_exists(con, *BANDS_SOURCE.split(".")):
        return empty
    keys = rows.select("_r", "indicator_id", "period_type", "period_start", "period_end", "geography_type",
                       "geography_code", "breakdown", POOL_OF)
    con.register("_rows", keys.to_arrow())
    try:
        bands = con.sql(f"""
            select r._r, b.band, any_value(b.standard_weight) as weight, sum(b.person_years) as person_years,
                   cast(sum(b.events) as bigint) as events, count(*) as periods
            from _rows r join {BANDS_SOURCE} b
              on b.indicator_id = r.indicator_id and b.geography_type = r.geography_type
             and b.geography_code = r.geography_code and b.breakdown = r.breakdown
             and b.period_type = coalesce(r.{POOL_OF}, r.period_type)
             and b.period_start between r.period_start and r.period_end
            group by r._r, b.band order by r._r, b.band""").fetchall()
    finally:
        con.unregister("_rows")
    by_row: dict[int, list[tuple]] = defaultdict(list)
    for r, band, w, py, x, _ in bands:
        by_row[r].append((band, w, py, x))
    published = dict(zip(rows["_r"].to_list(), rows["numerator"].to_list()))
    exact = dict(zip(rows["_r"].to_list(), exact_numerator.gather(rows["_r"]).to_list())) if exact_numerator is not None else {}
    rounded = []
    for r, bs in by_row.items():
        events = [x for _, _, _, x in bs]
        if published.get(r) is None or exact.get(r) != sum(events) or any(low <= x <= high for x in events):
            continue
        controlled = controlled_round(events, published[r], base)
        if controlled is None:
            continue
        rounded += [(r, w, py, x) for (_, w, py, _), x in zip(bs, controlled)]
    if not rounded:
        return empty
    con.register("_bands", pl.DataFrame(rounded, schema=["_r", "w", "py", "x"], orient="row").to_arrow())
    try:
        s = STATS_SCHEMA
        return con.sql(f"""select _r, {s}.dsr_value(x, py, w) as value, {s}.dsr_lower_ci(x, py, w) as lower_ci,
                                  {s}.dsr_upper_ci(x, py, w) as upper_ci
                           from _bands group by _r order by _r""").pl().with_columns(pl.col("_r").cast(pl.UInt32))
    finally:
        con.unregister("_bands")
