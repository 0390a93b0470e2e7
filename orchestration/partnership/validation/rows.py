"""Row-level contract validation: a pandera (polars) schema built from the contract.

Each row is checked against every rule of its contract; a row that breaks any rule goes to
quarantine with the full list of rules it broke (`<column>:<kind>`, `<rule>:cross_field`,
`<keys>:unique`, `<column>:required`), the rest are typed and become valid. Nothing else
decides what a valid row is.

The schema is the one definition of the rules. Each of its checks carries the polars
expression that says which rows pass it (`ROW_OK`); pandera's own check function evaluates
that same expression. Validation asks pandera for the schema-level verdict (columns, dtypes,
strictness) and evaluates every check's expression, with the schema's non-nullable columns,
as boolean masks in one polars select: parallel, and without pandera building a
failure-case frame with sample values per check, which dominated the time on large
extracts. `pandera_row_failures` is pandera's full lazy validation, kept as the reference a
test compares the masks with, row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.config import ValidationDepth, config_context

from orchestration.partnership.contracts.model import Column, Contract
from orchestration.partnership.validation.readers import ROW_NUMBER

RULES = "_rules"
ROW_OK = "row_ok"  # attribute of each schema check: key column -> polars expression, true where the row passes
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
    # 11 - total % 11, with 11 read as 0; a check value of 10 (no valid number) never equals a digit.
    return (11 - total % 11) % 11 == c.str.slice(9, 1).cast(pl.Int32, strict=False)


def _upn_letter_ok(c: pl.Expr) -> pl.Expr:
    total = sum(c.str.slice(i, 1).cast(pl.Int32, strict=False) * (i + 1) for i in range(1, 13))
    letters = pl.lit(_UPN_LETTERS)
    return c.str.slice(0, 1) == letters.str.slice((total % 23).cast(pl.Int64), 1)


def _element_check(name: str, ok: pl.Expr, key_pattern: str | None = None) -> pa.Check:
    """A row-wise check; nulls pass (requiredness is its own rule)."""

    def row_ok(key: str) -> pl.Expr:
        c = pl.col(key)
        cond = ok
        if key_pattern:  # e.g. a check digit is only meaningful on a well-formed value
            cond = ~c.str.contains(key_pattern) | ok
        return c.is_null() | cond.fill_null(False)

    return _check(name, row_ok)


def _check(name: str, row_ok, frame: bool = False) -> pa.Check:
    """A pandera check whose verdict per row is `row_ok(key)`; the same expression is kept on
    the check (`ROW_OK`) for the one-select evaluation in `row_failures`."""

    def fn(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(row_ok(data.key).alias("ok" if frame else data.key))

    check = pa.Check(fn, name=name)
    setattr(check, ROW_OK, row_ok)
    return check


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

    # Rows where either side is missing or unparseable are judged by the other rules.
    return _check(f"{rule.name}:cross_field", lambda _key: cmp.fill_null(True), frame=True)


def _composite_key_check(contract: Contract) -> pa.Check:
    key = contract.key_columns

    def row_ok(_key) -> pl.Expr:
        return ~(pl.struct(key).is_duplicated() & pl.all_horizontal([pl.col(k).is_not_null() for k in key]))

    return _check(f"{'+'.join(key)}:unique", row_ok, frame=True)


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
    rules: tuple[str, ...] = ()  # every row rule judged, named as quarantine names them, failing or not

    @property
    def rows_read(self) -> int:
        return self.valid.height + self.quarantine.height


def _rule_name(column: str | None, check: str) -> str:
    if column is None:  # a rule over the whole row (cross-field, composite key)
        return check
    kind = {"not_nullable": "required"}.get(check, check)
    return f"{column}:{kind}"


def _schema_errors(exc: pa.errors.SchemaErrors, contract: Contract) -> pl.DataFrame:
    fc = exc.failure_cases
    if fc.filter(pl.col("index").is_null()).height:
        # A failure not tied to a row (e.g. a schema-level error): treat as a file-level problem.
        bad = fc.filter(pl.col("index").is_null()).select("column", "check").unique().rows()
        raise RuntimeError(f"{contract.id}: contract schema could not be applied: {bad}") from None
    return fc


def row_rule_masks(schema: pa.DataFrameSchema) -> list[tuple[str, pl.Expr]]:
    """Every row rule of the schema as (rule name, expression true where a row breaks it)."""
    out = []
    for name, column in schema.columns.items():
        if name == ROW_NUMBER:  # the reader's numbering, not a contract rule
            continue
        if not column.nullable:
            out.append((_rule_name(name, "not_nullable"), pl.col(name).is_null()))
        for check in column.checks:
            out.append((_rule_name(name, check.name), ~getattr(check, ROW_OK)(name)))
    for check in schema.checks:
        out.append((_rule_name(None, check.name), ~getattr(check, ROW_OK)(None)))
    return out


def row_failures(schema: pa.DataFrameSchema, df: pl.DataFrame, contract: Contract) -> tuple[pl.Series, pl.DataFrame]:
    """(a mask of rows breaking any rule, one boolean column per rule), after pandera's schema-level verdict."""
    try:
        with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):  # columns and dtypes: no rows needed
            schema.validate(df.clear(), lazy=True)
    except pa.errors.SchemaErrors as exc:
        _schema_errors(exc, contract)
        raise RuntimeError(f"{contract.id}: contract schema could not be applied") from None  # rows are not schema-level
    masks = row_rule_masks(schema)
    # Lazy, so that a value parsed by several rules (type, range, cross-field) is parsed once.
    broken = df.lazy().select([m.alias(name) for name, m in masks]).collect()
    return broken.select(pl.any_horizontal(pl.all()).alias("bad")).to_series() if masks else pl.repeat(False, df.height, eager=True), broken


def pandera_row_failures(schema: pa.DataFrameSchema, df: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """pandera's own verdict, from its lazy validation's failure cases: (index, rule) per broken rule per row.

    Slow on large frames (a failure-case frame with sample values per check); the reference
    that `row_failures` is tested against."""
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = _schema_errors(exc, contract)
        return fc.select(
            pl.col("index").cast(pl.Int64),
            pl.struct("column", "check").map_elements(lambda s: _rule_name(s["column"], s["check"]), return_dtype=pl.Utf8).alias("rule"),
        ).unique()
    return pl.DataFrame(schema={"index": pl.Int64, "rule": pl.Utf8})


def validate_rows(df: pl.DataFrame, contract: Contract, as_of: date) -> RowValidation:
    """Split text rows into typed valid rows and quarantined rows with every rule each broke."""
    schema = build_schema(contract, as_of)
    bad, broken = row_failures(schema, df, contract)
    names = broken.columns
    failing = broken.filter(bad)
    if names:
        rules = failing.select(
            pl.concat_list([pl.when(pl.col(n)).then(pl.lit(n)) for n in sorted(names)]).list.drop_nulls().alias(RULES))
    else:
        rules = pl.DataFrame(schema={RULES: pl.List(pl.Utf8)})
    quarantine = df.filter(bad).with_columns(rules.get_column(RULES).cast(pl.List(pl.Utf8)))
    valid = df.filter(~bad).select(
        [parsed(col).alias(col.name) for col in contract.columns] + [pl.col(ROW_NUMBER)]
    )
    sums = failing.select(pl.all().cast(pl.Int64).sum()).row(0, named=True) if failing.height else {}
    counts = {n: int(sums[n]) for n in sorted(names) if sums.get(n)}
    return RowValidation(valid, quarantine, counts, tuple(names))
