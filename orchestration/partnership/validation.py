"""Row-level contract validation: a pandera (polars) schema built from the contract.

Each row is checked against every rule of its contract; a row that breaks any rule goes to
quarantine with the full list of rules it broke (`<column>:<kind>` or `cross_field:<name>`),
the rest are typed and become valid. Nothing else decides what a valid row is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from .contracts import Column, Contract
from .readers import ROW_NUMBER

RULES = "_rules"
_JDK = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"), ("'T'", "T")]
_BOOL = {"true": True, "false": False, "y": True, "n": False, "yes": True, "no": False, "1": True, "0": False}
_OPS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "=": "eq", "!=": "ne"}
_UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def strftime_format(jdk: str) -> str:
    """ODCS date formats follow Java's DateTimeFormatter; polars wants strftime."""
    out = jdk
    for a, b in _JDK:
        out = out.replace(a, b)
    return out


def parsed(col: Column) -> pl.Expr:
    """The typed value of a text column; null where the text does not parse."""
    c = pl.col(col.name)
    match col.logical_type:
        case "date":
            return c.str.strptime(pl.Date, strftime_format(col.date_format), strict=False, exact=True)
        case "timestamp":
            return c.str.strptime(pl.Datetime("us"), strftime_format(col.date_format), strict=False, exact=True)
        case "integer":
            return c.str.to_integer(strict=False)
        case "number":
            return c.cast(pl.Float64, strict=False)
        case "boolean":
            return c.str.to_lowercase().replace_strict(_BOOL, default=None, return_dtype=pl.Boolean)
        case _:
            return c


def _bound(col: Column, value) -> object:
    if col.logical_type == "date":
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    if col.logical_type == "timestamp":
        return datetime.fromisoformat(str(value).replace("T", " "))
    return value


def _nhs_mod11_ok(c: pl.Expr) -> pl.Expr:
    total = sum(c.str.slice(i, 1).cast(pl.Int32, strict=False) * (10 - i) for i in range(9))
    check = 11 - total % 11
    check = pl.when(check == 11).then(0).otherwise(check)
    return (check != 10) & (check == c.str.slice(9, 1).cast(pl.Int32, strict=False))


def _upn_letter_ok(c: pl.Expr) -> pl.Expr:
    total = sum(c.str.slice(i, 1).cast(pl.Int32, strict=False) * (i + 1) for i in range(1, 13))
    letters = pl.lit(_UPN_LETTERS)
    return c.str.slice(0, 1) == letters.str.slice((total % 23).cast(pl.Int64), 1)


def _element_check(name: str, ok: pl.Expr, key_pattern: str | None = None) -> pa.Check:
    """A row-wise check; nulls pass (requiredness is its own rule)."""

    def fn(data: PolarsData) -> pl.LazyFrame:
        c = pl.col(data.key)
        cond = ok
        if key_pattern:  # e.g. a check digit is only meaningful on a well-formed value
            cond = ~c.str.contains(key_pattern) | ok
        return data.lazyframe.select((c.is_null() | cond.fill_null(False)).alias(data.key))

    return pa.Check(fn, name=name)


def _column_checks(col: Column, as_of: date) -> list[pa.Check]:
    c = pl.col(col.name)
    checks: list[pa.Check] = []
    if col.logical_type != "string":
        kind = "date_parse" if col.logical_type in ("date", "timestamp") else "type"
        checks.append(_element_check(kind, parsed(col).is_not_null()))
    if col.unique:  # within the delivery; a missing key is the `required` rule's business
        checks.append(_element_check("unique", ~c.is_duplicated()))
    if col.pattern:
        checks.append(_element_check("pattern", c.str.contains(col.pattern)))
    if col.min_length is not None or col.max_length is not None:
        n = c.str.len_chars()
        ok = pl.lit(True)
        if col.min_length is not None:
            ok = ok & (n >= col.min_length)
        if col.max_length is not None:
            ok = ok & (n <= col.max_length)
        checks.append(_element_check("length", ok))
    if col.allowed_values:
        checks.append(_element_check("allowed_values", c.is_in(list(col.allowed_values))))
    value = parsed(col)
    ok = pl.lit(True)
    if col.minimum is not None:
        ok = ok & (value >= _bound(col, col.minimum))
    if col.maximum is not None:
        ok = ok & (value <= _bound(col, col.maximum))
    if col.not_in_future:
        limit = as_of if col.logical_type == "date" else datetime.combine(as_of, datetime.max.time())
        ok = ok & (value <= limit)
    if col.minimum is not None or col.maximum is not None or col.not_in_future:
        checks.append(_element_check("range", value.is_null() | ok))
    for named in col.checks:
        if named == "nhs_number_mod11":
            checks.append(_element_check("nhs_number_check_digit", _nhs_mod11_ok(c), key_pattern=r"^[0-9]{10}$"))
        elif named == "upn_check_letter":
            checks.append(_element_check("upn_check_letter", _upn_letter_ok(c), key_pattern=r"^[A-Z][0-9]{12}$"))
    return checks


def _cross_field_check(contract: Contract, rule) -> pa.Check:
    left, right = parsed(contract.column(rule.left)), parsed(contract.column(rule.right))
    cmp = getattr(left, _OPS[rule.op])(right)

    def fn(data: PolarsData) -> pl.LazyFrame:
        # Rows where either side is missing or unparseable are judged by the other rules.
        return data.lazyframe.select(cmp.fill_null(True).alias("ok"))

    return pa.Check(fn, name=f"{rule.name}:cross_field")


def _composite_key_check(contract: Contract) -> pa.Check:
    key = contract.key_columns

    def fn(data: PolarsData) -> pl.LazyFrame:
        dup = pl.struct(key).is_duplicated() & pl.all_horizontal([pl.col(k).is_not_null() for k in key])
        return data.lazyframe.select((~dup).alias("ok"))

    return pa.Check(fn, name=f"{'+'.join(key)}:unique")


def build_schema(contract: Contract, as_of: date) -> pa.DataFrameSchema:
    columns = {
        col.name: pa.Column(pl.Utf8, nullable=not col.required, checks=_column_checks(col, as_of))
        for col in contract.columns
    }
    columns[ROW_NUMBER] = pa.Column(pl.Int64)
    frame_checks = [_cross_field_check(contract, r) for r in contract.cross_field_rules]
    if len(contract.key_columns) > 1:  # a composite primary key is unique within the delivery
        frame_checks.append(_composite_key_check(contract))
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=True, coerce=False)


@dataclass
class RowValidation:
    valid: pl.DataFrame  # typed, contract columns + _row_number
    quarantine: pl.DataFrame  # text, contract columns + _row_number + _rules
    rule_counts: dict[str, int]  # rows failing each rule

    @property
    def rows_read(self) -> int:
        return self.valid.height + self.quarantine.height


def _rule_name(column: str | None, check: str) -> str:
    if column is None:  # a rule over the whole row (cross-field, composite key)
        return check
    kind = {"not_nullable": "required"}.get(check, check)
    return f"{column}:{kind}"


def validate_rows(df: pl.DataFrame, contract: Contract, as_of: date) -> RowValidation:
    """Split text rows into typed valid rows and quarantined rows with every rule each broke."""
    schema = build_schema(contract, as_of)
    failures = pl.DataFrame(schema={"index": pl.Int64, "rule": pl.Utf8})
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        if fc.filter(pl.col("index").is_null()).height:
            # A failure not tied to a row (e.g. a schema-level error): treat as a file-level problem.
            bad = fc.filter(pl.col("index").is_null()).select("column", "check").unique().rows()
            raise RuntimeError(f"{contract.id}: contract schema could not be applied: {bad}") from None
        failures = fc.select(
            pl.col("index").cast(pl.Int64),
            pl.struct("column", "check").map_elements(lambda s: _rule_name(s["column"], s["check"]), return_dtype=pl.Utf8).alias("rule"),
        ).unique()
    per_row = failures.group_by("index").agg(pl.col("rule").sort().alias(RULES))
    indexed = df.with_row_index("index").with_columns(pl.col("index").cast(pl.Int64))
    quarantine = (
        indexed.join(per_row, on="index", how="inner").sort("index").drop("index")
    )
    valid_text = indexed.join(per_row, on="index", how="anti").sort("index").drop("index")
    valid = valid_text.select(
        [parsed(col).alias(col.name) for col in contract.columns] + [pl.col(ROW_NUMBER)]
    )
    counts = failures.group_by("rule").len().sort("rule")
    return RowValidation(valid, quarantine, dict(counts.iter_rows()))
