"""The simplest alternative, for comparison: the same ingest, row checks and FALLS-01 in plain DuckDB SQL.

    .venv/bin/python -m benchmarks.baseline LANDING REFERENCE DB OUT.json [--exclude FILE ...]

No Dagster, no dbt, no pandera, no per-delivery bookkeeping: one DuckDB file, one
`read_csv`/`read_parquet` per extract over all its files, every contract row rule written as a
SQL predicate (generated here from the same contract objects, so both sides check the same
rules), a split into valid and quarantine tables, then the FALLS-01 directly standardised rate
(ESP2013, Dobson limits) by ward and district, month and quarter, persons and by sex.

What it deliberately does not do (and the pipeline does): archive by hash, register deliveries,
pseudonymise identifiers, GX batch suites and reports, linkage, the other indicators, dbt
tests, releases and board packs. DuckDB has no built-in .xlsx reader without downloading its
excel extension (nothing downloads at run time here), so the two council workbook extracts are
read with openpyxl (the product's reader) and handed to DuckDB as Arrow; Windows-1252 CSVs are
transcoded to UTF-8 in Python first (DuckDB's built-in Latin-1 refuses Windows-1252's 0x80-0x9F).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from orchestration.partnership.contracts.model import Column, Contract, load_contracts
from orchestration.partnership.settings import PROJECT_ROOT
from orchestration.partnership.validation.rows import strftime_format

_DUCK = {"string": "varchar", "date": "date", "timestamp": "timestamp", "integer": "bigint", "number": "double",
         "boolean": "boolean"}
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
_BOOL = "('true','false','y','n','yes','no','1','0')"
_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "!=": "<>"}


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def typed(col: Column) -> str:
    """SQL for the typed value of a text column; null where it does not parse."""
    c = q(col.name)
    match col.logical_type:
        case "date":
            return f"try_strptime({c}, {lit(strftime_format(col.date_format))})::date"
        case "timestamp":
            return f"try_strptime({c}, {lit(strftime_format(col.date_format))})"
        case "integer":
            return f"try_cast({c} as bigint)"
        case "number":
            return f"try_cast({c} as double)"
        case "boolean":
            return f"case when lower({c}) in ('true','y','yes','1') then true when lower({c}) in ('false','n','no','0') then false end"
        case _:
            return c


def _bound(col: Column, value) -> str:
    if col.logical_type == "date":
        return f"date {lit(value)}"
    if col.logical_type == "timestamp":
        return f"timestamp {lit(str(value).replace('T', ' '))}"
    return str(value)


def rule_predicates(contract: Contract) -> list[tuple[str, str]]:
    """(rule name, SQL true when the row BREAKS the rule), one per contract row rule."""
    out: list[tuple[str, str]] = []
    for col in contract.columns:
        c = q(col.name)
        if col.required:
            out.append((f"{col.name}:required", f"{c} is null"))
        if col.logical_type != "string":
            kind = "date_parse" if col.logical_type in ("date", "timestamp") else "type"
            out.append((f"{col.name}:{kind}", f"{c} is not null and {typed(col)} is null"))
        if col.unique:
            out.append((f"{col.name}:unique",
                        f"{c} is not null and count(*) over (partition by _file, {c}) > 1"))
        if col.pattern:
            out.append((f"{col.name}:pattern", f"{c} is not null and not regexp_matches({c}, {lit(col.pattern)})"))
        if col.min_length is not None or col.max_length is not None:
            conds = []
            if col.min_length is not None:
                conds.append(f"length({c}) < {col.min_length}")
            if col.max_length is not None:
                conds.append(f"length({c}) > {col.max_length}")
            out.append((f"{col.name}:length", f"({' or '.join(conds)})"))
        if col.allowed_values:
            out.append((f"{col.name}:allowed_values", f"{c} not in ({', '.join(lit(v) for v in col.allowed_values)})"))
        conds = []
        v = typed(col)
        if col.minimum is not None:
            conds.append(f"{v} < {_bound(col, col.minimum)}")
        if col.maximum is not None:
            conds.append(f"{v} > {_bound(col, col.maximum)}")
        if col.not_in_future:
            conds.append(f"{v}::date > _as_of")
        if conds:
            out.append((f"{col.name}:range", f"coalesce({' or '.join(conds)}, false)"))
        for named in col.checks:
            if named == "nhs_number_mod11":
                total = " + ".join(f"substr({c}, {i + 1}, 1)::int * {10 - i}" for i in range(9))
                chk = f"(11 - ({total}) % 11)"
                chk = f"(case when {chk} = 11 then 0 else {chk} end)"
                out.append((f"{col.name}:nhs_number_check_digit",
                            f"regexp_full_match({c}, '[0-9]{{10}}') and ({chk} = 10 or {chk} <> substr({c}, 10, 1)::int)"))
            elif named == "upn_check_letter":
                total = " + ".join(f"substr({c}, {i + 1}, 1)::int * {i + 1}" for i in range(1, 13))
                out.append((f"{col.name}:upn_check_letter",
                            f"regexp_full_match({c}, '[A-Z][0-9]{{12}}') and "
                            f"substr({c}, 1, 1) <> substr('{_UPN_LETTERS}', (({total}) % 23)::int + 1, 1)"))
    for r in contract.cross_field_rules:
        left, right = typed(contract.column(r.left)), typed(contract.column(r.right))
        out.append((f"{r.name}:cross_field", f"not coalesce({left} {_OPS[r.op]} {right}, true)"))
    key = contract.key_columns
    if len(key) > 1:
        part = ", ".join(q(k) for k in key)
        out.append(("+".join(key) + ":unique",
                    " and ".join(f"{q(k)} is not null" for k in key) + f" and count(*) over (partition by _file, {part}) > 1"))
    return out


def files_of(landing: Path, contract: Contract, exclude: set[str]) -> list[Path]:
    folder = landing / contract.agency / contract.extract
    return sorted(p for p in folder.glob("*") if p.is_file() and fnmatch.fnmatch(p.name, contract.delivery.file_pattern)
                  and str(p.relative_to(landing)) not in exclude) if folder.is_dir() else []


def load_raw(con: duckdb.DuckDBPyConnection, contract: Contract, files: list[Path], scratch: Path) -> None:
    """raw_<id>: every row as text (trimmed, blank = null), with its file, row number and arrival date."""
    t = q("raw_" + contract.id)
    cols = contract.column_names
    clean = ", ".join(f"nullif(trim({q(c)}::varchar), '') as {q(c)}" for c in cols)
    arrivals = ", ".join(f"({lit(p.name)}, date {lit(datetime.fromtimestamp(p.stat().st_mtime, tz=timezone.utc).date())})"
                         for p in files)
    fmt = contract.format
    if fmt.type == "csv":
        paths = files
        if fmt.encoding.lower() not in ("utf-8", "utf-8-sig"):
            # DuckDB reads UTF-8, UTF-16 and Latin-1 without extensions, and Windows-1252's
            # curly quotes and dashes (0x80-0x9F) are not Latin-1: transcode to UTF-8 first (timed).
            paths = []
            for p in files:
                out = scratch / p.name
                out.write_bytes(p.read_bytes().decode(fmt.encoding).encode("utf-8"))
                paths.append(out)
        src = (f"read_csv([{', '.join(lit(p) for p in paths)}], delim = {lit(fmt.delimiter)}, quote = {lit(fmt.quote)}, "
               f"header = true, skip = {fmt.header_row - 1}, all_varchar = true, filename = true)")
    elif fmt.type == "parquet":
        src = f"read_parquet([{', '.join(lit(p) for p in files)}], filename = true)"
    else:  # xlsx: no DuckDB reader without a download; read with openpyxl, hand over as Arrow
        import polars as pl

        from orchestration.partnership.validation.readers import read_delivery

        frames = [read_delivery(p, contract).drop("_row_number").with_columns(pl.lit(str(p)).alias("filename"))
                  for p in files]
        con.register("_xlsx", pl.concat(frames).to_arrow())
        src = "_xlsx"
    con.execute(f"""
        create or replace temp table _scan as select * from {src}""")  # in file order (insertion order is kept)
    con.execute(f"""
        create or replace table {t} as
        select parse_filename(filename) as _file,
               row_number() over (partition by filename order by s.rowid) as _row_number,
               a.as_of as _as_of, {clean}
        from _scan s join (values {arrivals}) a(name, as_of) on a.name = parse_filename(s.filename)""")
    con.execute("drop table _scan")
    if fmt.type == "xlsx":
        con.unregister("_xlsx")


def check_rows(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """valid_<id> (typed) and quarantine_<id> (text + every rule broken), from raw_<id>."""
    raw, t = q("raw_" + contract.id), contract.id
    preds = rule_predicates(contract)
    rules = "list_filter([" + ", ".join(f"case when {p} then {lit(n)} end" for n, p in preds) + "], lambda x: x is not null)"
    con.execute(f"create or replace temp table _checked as select *, {rules} as _rules from {raw}")
    con.execute(f"create or replace table {q('quarantine_' + t)} as select * exclude (_as_of) from _checked where len(_rules) > 0")
    sel = ", ".join(f"{typed(c)} as {q(c.name)}" for c in contract.columns)
    con.execute(f"create or replace table {q('valid_' + t)} as select _file, _row_number, {sel} from _checked where len(_rules) = 0")
    con.execute("drop table _checked")


FALLS_01 = """
create or replace table falls_01 as
with
episodes as (
    select * from valid_riverside_acute__emergency_admissions
    qualify row_number() over (partition by episode_id order by _file desc, _row_number desc) = 1
),
esp as (select * from read_csv({esp}, header = true)),
ranges as (select * from read_csv({icd}, header = true)),
methods as (select * from read_csv({methods}, header = true)),
wards as (select * from read_csv({wards}, header = true)),
postcodes as (
    select upper(replace(p.postcode, ' ', '')) as pc, p.ward_code, w.district_code
    from read_csv({postcodes}, header = true, all_varchar = true) p join wards w using (ward_code)
),
population as (
    select p.year, p.ward_code, p.sex, esp.age_band, esp.weight, p.population
    from read_csv({population}, header = true) p join esp on p.age between esp.age_from and esp.age_to
    where esp.age_from >= 65
),
admissions as (
    select e.admission_date, case e.sex when '1' then 'M' when '2' then 'F' else 'U' end as sex,
           esp.age_band, pc.ward_code, pc.district_code
    from episodes e
    join methods m on e.admission_method = m.admission_method::varchar and m.is_emergency
    join postcodes pc on upper(replace(e.postcode, ' ', '')) = pc.pc
    join esp on date_sub('year', e.date_of_birth, e.admission_date) between esp.age_from and esp.age_to
    where e.episode_number = 1 and date_sub('year', e.date_of_birth, e.admission_date) >= 65
      and exists (select 1 from ranges r where r.code_list = 'injury_S00_T98'
                  and substr(e.primary_diagnosis, 1, 3) between r.range_start and r.range_end)
      and exists (select 1 from ranges r where r.code_list = 'falls_W00_W19'
                  and (substr(e.primary_diagnosis, 1, 3) between r.range_start and r.range_end
                    or substr(e.secondary_diagnosis_1, 1, 3) between r.range_start and r.range_end
                    or substr(e.secondary_diagnosis_2, 1, 3) between r.range_start and r.range_end
                    or substr(e.secondary_diagnosis_3, 1, 3) between r.range_start and r.range_end
                    or substr(e.secondary_diagnosis_4, 1, 3) between r.range_start and r.range_end))
),
coverage as (select min(admission_date) as lo, max(admission_date) as hi from episodes),
periods as (
    select kind as period_type, s as period_start, (s + step - interval 1 day)::date as period_end,
           (select coalesce(max(year), (select min(year) from population)) from population where year <= year(s)) as pop_year,
           (date_diff('day', s, (s + step)::date)) / (date_diff('day', date_trunc('year', s), date_trunc('year', s) + interval 1 year)) as yf
    from (select 'month' as kind, interval 1 month as step, unnest(generate_series(date_trunc('month', lo), hi, interval 1 month))::date as s from coverage
          union all
          select 'quarter', interval 3 month, unnest(generate_series(date_trunc('quarter', lo), hi, interval 3 month))::date from coverage)
    where s >= (select lo from coverage) and (s + step - interval 1 day)::date <= (select hi from coverage)
),
cells as (  -- every period x ward x sex x band, with its person-years and events
    select *, residents * yf as person_years from (
        select pe.period_type, pe.period_start, pe.period_end, pe.yf, p.ward_code, w.district_code, p.sex, p.age_band,
               p.weight, sum(p.population) as residents
        from periods pe join population p on p.year = pe.pop_year join wards w using (ward_code)
        group by all)
),
events as (
    select pe.period_type, pe.period_start, a.ward_code, a.sex, a.age_band, count(*) as n
    from admissions a join periods pe on a.admission_date between pe.period_start and pe.period_end
    group by all
),
banded as (  -- persons include events of unknown sex; the sex breakdowns do not
    select c.*, coalesce(e.n, 0) as events,
           coalesce(e.n, 0) + case when c.sex = 'F' then coalesce(u.n, 0) else 0 end as person_events
    from cells c
    left join events e using (period_type, period_start, ward_code, sex, age_band)
    left join (select * from events where sex = 'U') u using (period_type, period_start, ward_code, age_band)
),
groups as (
    select period_type, period_start, period_end, 'ward' as geography_type, ward_code as geography_code,
           'persons' as breakdown, age_band, any_value(weight) as w, sum(residents) as residents,
           sum(person_years) as py, sum(person_events) as x
    from banded group by all
    union all
    select period_type, period_start, period_end, 'district', district_code, 'persons', age_band, any_value(weight),
           sum(residents), sum(person_years), sum(person_events)
    from banded group by all
    union all
    select period_type, period_start, period_end, 'ward', ward_code, 'sex:' || sex, age_band, any_value(weight),
           sum(residents), sum(person_years), sum(events)
    from banded group by all
    union all
    select period_type, period_start, period_end, 'district', district_code, 'sex:' || sex, age_band, any_value(weight),
           sum(residents), sum(person_years), sum(events)
    from banded group by all
),
dsr as (
    select period_type, period_start, period_end, geography_type, geography_code, breakdown,
           sum(x) as numerator, sum(residents) as denominator,
           100000 * sum(x * w / py) / sum(w) as value,
           power(100000, 2) * sum(x * power(w / py, 2)) / power(sum(w), 2) as variance
    from groups group by all
)
select period_type, period_start, period_end, geography_type, geography_code, breakdown, numerator, denominator,
       case when numerator >= 10 then value end as value,
       -- Dobson limits with Byar's approximation of the Poisson limits of the total count
       case when numerator >= 10 then value + sqrt(variance / numerator)
            * (numerator * power(1 - 1 / (9 * numerator) - 1.959963984540054 / (3 * sqrt(numerator)), 3) - numerator) end as lower_ci,
       case when numerator >= 10 then value + sqrt(variance / numerator)
            * ((numerator + 1) * power(1 - 1 / (9 * (numerator + 1)) + 1.959963984540054 / (3 * sqrt(numerator + 1)), 3) - numerator) end as upper_ci
from dsr
"""


def falls_01_sql(reference: Path) -> str:
    seeds = PROJECT_ROOT / "dbt_project" / "seeds" / "reference"
    return FALLS_01.format(
        esp=lit(seeds / "esp2013.csv"), icd=lit(seeds / "icd10_code_ranges.csv"),
        methods=lit(seeds / "admission_methods.csv"), wards=lit(reference / "geography_wards.csv"),
        postcodes=lit(reference / "geography_postcodes.csv"), population=lit(reference / "population_estimates.csv"))


def run(landing: Path, reference: Path, db: Path, exclude: set[str] = frozenset()) -> dict:
    contracts = load_contracts(PROJECT_ROOT / "contracts" / "agencies")
    db.unlink(missing_ok=True)
    timings: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    con = duckdb.connect(str(db))
    scratch = db.with_name(db.stem + "-transcoded")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        for cid, contract in sorted(contracts.items()):
            files = files_of(landing, contract, set(exclude))
            if not files:
                continue
            t0 = time.perf_counter()
            load_raw(con, contract, files, scratch)
            t1 = time.perf_counter()
            check_rows(con, contract)
            t2 = time.perf_counter()
            timings[cid] = {"load": t1 - t0, "checks": t2 - t1}
            (read,), = con.execute(f"select count(*) from {q('raw_' + cid)}").fetchall()
            (bad,), = con.execute(f"select count(*) from {q('quarantine_' + cid)}").fetchall()
            counts[cid] = {"files": len(files), "rows_read": read, "rows_quarantined": bad}
        t0 = time.perf_counter()
        con.execute(falls_01_sql(reference))
        falls_s = time.perf_counter() - t0
        (falls_rows,), = con.execute("select count(*) from falls_01").fetchall()
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {"extracts": timings, "counts": counts, "falls_01_seconds": falls_s, "falls_01_rows": falls_rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("landing", type=Path)
    ap.add_argument("reference", type=Path)
    ap.add_argument("db", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--exclude", nargs="*", default=[], help="landing-relative paths to leave out")
    a = ap.parse_args(argv)
    t = time.perf_counter()
    result = run(a.landing, a.reference, a.db, set(a.exclude))
    result["total_seconds"] = time.perf_counter() - t
    a.out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
