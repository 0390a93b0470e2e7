"""Agency data contracts: ODCS v3 YAML files, read into one typed model.

Every check of an extract (file parsing, row rules, batch rules, dbt sources, docs) is
derived from its contract through this module, so a rule is written once, in the contract.
Standard ODCS fields carry what the standard can say (types, required, unique, patterns,
ranges, allowed values, row counts, null rates); the project's extensions sit under
`customProperties` and are checked against `contract_extensions.schema.json`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CLASSIFICATIONS = ("direct_identifier", "quasi_identifier", "special_category", "other")
_EXTENSIONS_SCHEMA = Path(__file__).with_name("contract_extensions.schema.json")


class ContractError(ValueError):
    """A contract file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Column:
    name: str
    logical_type: str  # string, date, timestamp, integer, number, boolean
    description: str = ""
    required: bool = False
    unique: bool = False
    primary_key: bool = False
    primary_key_position: int = -1
    classification: str = "other"
    pattern: str | None = None
    date_format: str | None = None  # ODCS/JDK style, e.g. dd/MM/yyyy
    minimum: Any = None
    maximum: Any = None
    min_length: int | None = None
    max_length: int | None = None
    allowed_values: tuple[str, ...] | None = None
    checks: tuple[str, ...] = ()  # named checks, e.g. nhs_number_mod11
    not_in_future: bool = False
    max_null_percent: float | None = None  # batch rule
    null_severity: str = "warning"  # error rejects the delivery, warning warns


@dataclass(frozen=True)
class CrossFieldRule:
    name: str
    left: str
    op: str
    right: str
    description: str = ""


@dataclass(frozen=True)
class FileFormat:
    type: str  # csv, xlsx, parquet
    delimiter: str = ","
    encoding: str = "utf-8"  # utf-8, utf-8-sig (BOM expected), cp1252
    header_row: int = 1  # 1-based row holding the header (xlsx title rows above it)
    sheet: str | None = None
    quote: str = '"'
    extra_columns: str = "reject"  # reject | ignore


@dataclass(frozen=True)
class Delivery:
    cadence: str  # nightly, weekly, monthly, termly
    mode: str  # incremental, snapshot
    due_by: str  # local time of day the delivery is due, HH:MM
    file_pattern: str
    timezone: str = "Europe/London"
    file_date: str | None = None  # the file name carries the date it covers up to (snapshots: the snapshot date)
    due_after_days: int = 1  # due by `due_by` local time this many days after the file date
    late: str = "reject"  # reject | warn: what a delivery arriving after its due time does


@dataclass(frozen=True)
class Freshness:
    column: str  # a date or timestamp column
    max_age_days: int  # the newest value is at most this many days before the delivery arrived
    severity: str = "warning"


@dataclass(frozen=True)
class Contract:
    id: str  # <agency>__<extract>
    version: str
    agency: str
    extract: str
    title: str
    owner_role: str
    owner_email: str
    delivery: Delivery
    format: FileFormat
    columns: tuple[Column, ...]
    cross_field_rules: tuple[CrossFieldRule, ...] = ()
    row_count_min: int | None = None
    row_count_max: int | None = None
    row_count_severity: str = "error"
    freshness: Freshness | None = None
    shared_event: str | None = None  # a column naming one event several people's rows share
    quarantine_tolerance: float = 0.05
    retention_days: int | None = None
    path: Path | None = field(default=None, compare=False)
    agency_name: str = ""  # the agency as people name it (the contract's team name); `agency` is its id

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def key_columns(self) -> list[str]:
        return [c.name for c in sorted((c for c in self.columns if c.primary_key), key=lambda c: c.primary_key_position)]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def table(self) -> str:
        return self.id


def _custom(props: list[dict] | None) -> dict[str, Any]:
    return {p["property"]: p["value"] for p in props or []}


@lru_cache(maxsize=1)
def _extensions_schema() -> dict:
    return json.loads(_EXTENSIONS_SCHEMA.read_text())


def _check_extensions(path: Path, where: str, kind: str, values: dict[str, Any]) -> None:
    schema = _extensions_schema()[kind]
    validator = jsonschema.Draft202012Validator(schema)
    for err in sorted(validator.iter_errors(values), key=lambda e: list(e.path)):
        key = ".".join(str(p) for p in err.path) or "(customProperties)"
        if err.validator == "additionalProperties":
            unknown = sorted(set(err.instance) - set(schema.get("properties", {})))
            raise ContractError(f"{path}: {where}.customProperties: unknown key(s) {unknown}; allowed: {sorted(schema.get('properties', {}))}")
        raise ContractError(f"{path}: {where}.customProperties.{key}: {err.message}")


def _library_quality(quality: list[dict] | None, metric: str) -> dict | None:
    for q in quality or []:
        if q.get("type", "library") == "library" and q.get("metric") == metric:
            return q
    return None


def _severity(path: Path, where: str, quality: dict | None, default: str) -> str:
    value = (quality or {}).get("severity", default)
    if value not in ("error", "warning"):
        raise ContractError(f"{path}: {where}.quality.severity: {value!r} is not one of ['error', 'warning']")
    return value


def _column(path: Path, raw: dict) -> Column:
    name = raw.get("name")
    if not name:
        raise ContractError(f"{path}: schema.properties: a property has no name")
    where = f"schema.properties[{name}]"
    custom = _custom(raw.get("customProperties"))
    _check_extensions(path, where, "property", custom)
    opts = raw.get("logicalTypeOptions") or {}
    logical = raw.get("logicalType", "string")
    if logical not in ("string", "date", "timestamp", "integer", "number", "boolean"):
        raise ContractError(f"{path}: {where}.logicalType: {logical!r} is not supported")
    classification = raw.get("classification", "other")
    if classification not in CLASSIFICATIONS:
        raise ContractError(f"{path}: {where}.classification: {classification!r} is not one of {list(CLASSIFICATIONS)}")
    pattern = opts.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ContractError(f"{path}: {where}.logicalTypeOptions.pattern: invalid regular expression ({exc})") from None
    allowed = None
    invalid = _library_quality(raw.get("quality"), "invalidValues")
    if invalid is not None:
        values = (invalid.get("arguments") or {}).get("validValues")
        if not isinstance(values, list) or not values:
            raise ContractError(f"{path}: {where}.quality.invalidValues.arguments.validValues: must be a non-empty list")
        allowed = tuple(str(v) for v in values)
    nulls = _library_quality(raw.get("quality"), "nullValues")
    max_null = None
    if nulls is not None:
        if nulls.get("unit") != "percent" or "mustBeLessThan" not in nulls:
            raise ContractError(f"{path}: {where}.quality.nullValues: use unit: percent with mustBeLessThan")
        max_null = float(nulls["mustBeLessThan"])
    null_severity = _severity(path, where, nulls, "warning")
    date_format = opts.get("format") if logical in ("date", "timestamp") else None
    if logical in ("date", "timestamp") and not date_format:
        raise ContractError(f"{path}: {where}.logicalTypeOptions.format: dates and timestamps need a format")
    return Column(
        name=name,
        logical_type=logical,
        description=raw.get("description", ""),
        required=bool(raw.get("required", False)),
        unique=bool(raw.get("unique", False)),
        primary_key=bool(raw.get("primaryKey", False)),
        primary_key_position=int(raw.get("primaryKeyPosition", -1)),
        classification=classification,
        pattern=pattern,
        date_format=date_format,
        minimum=opts.get("minimum"),
        maximum=opts.get("maximum"),
        min_length=opts.get("minLength"),
        max_length=opts.get("maxLength"),
        allowed_values=allowed,
        checks=tuple(custom.get("checks", ())),
        not_in_future=bool(custom.get("notInFuture", False)),
        max_null_percent=max_null,
        null_severity=null_severity,
    )


# libyaml's parser under PyYAML's safe constructor (a seventh of the time: the contracts are read at
# every start of a night, the UI's code server and the tests); the same documents as `yaml.safe_load`
# (tests/unit/test_contracts.py compares them on every contract and protocol).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_contract(path: Path) -> Contract:
    path = Path(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise ContractError(f"{path}: a contract must be a YAML mapping")
    for key in ("apiVersion", "kind", "id", "version", "status", "schema"):
        if key not in doc:
            raise ContractError(f"{path}: missing required key {key!r}")
    if doc["kind"] != "DataContract":
        raise ContractError(f"{path}: kind: must be DataContract")
    custom = _custom(doc.get("customProperties"))
    _check_extensions(path, "(top level)", "contract", custom)
    schema = doc["schema"]
    if not isinstance(schema, list) or len(schema) != 1:
        raise ContractError(f"{path}: schema: one object per extract contract is expected")
    obj = schema[0]
    obj_custom = _custom(obj.get("customProperties"))
    _check_extensions(path, f"schema[{obj.get('name')}]", "object", obj_custom)
    columns = tuple(_column(path, p) for p in obj.get("properties") or [])
    if not columns:
        raise ContractError(f"{path}: schema[{obj.get('name')}].properties: no columns")
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ContractError(f"{path}: schema.properties: duplicate column names")
    rules = []
    for r in obj_custom.get("crossFieldRules", []):
        for side in ("left", "right"):
            if r[side] not in names:
                raise ContractError(f"{path}: crossFieldRules[{r['name']}].{side}: unknown column {r[side]!r}")
        rules.append(CrossFieldRule(r["name"], r["left"], r["op"], r["right"], r.get("description", "")))
    row_count = _library_quality(obj.get("quality"), "rowCount")
    rc_min = rc_max = None
    if row_count is not None:
        between = row_count.get("mustBeBetween")
        if not (isinstance(between, list) and len(between) == 2 and all(isinstance(v, int) for v in between) and between[0] <= between[1]):
            raise ContractError(f"{path}: schema[{obj.get('name')}].quality.rowCount.mustBeBetween: two whole numbers, low then high")
        rc_min, rc_max = between
    rc_severity = _severity(path, f"schema[{obj.get('name')}].rowCount", row_count, "error")
    freshness = None
    if "freshness" in obj_custom:
        f = obj_custom["freshness"]
        if f["column"] not in names:
            raise ContractError(f"{path}: schema[{obj.get('name')}].customProperties.freshness.column: unknown column {f['column']!r}")
        if next(c for c in columns if c.name == f["column"]).logical_type not in ("date", "timestamp"):
            raise ContractError(f"{path}: schema[{obj.get('name')}].customProperties.freshness.column: {f['column']!r} is not a date or timestamp")
        freshness = Freshness(f["column"], int(f["maxAgeDays"]), f.get("severity", "warning"))
    shared_event = (obj_custom.get("sharedEvent") or {}).get("column")
    if shared_event is not None and shared_event not in names:
        raise ContractError(f"{path}: schema[{obj.get('name')}].customProperties.sharedEvent.column: unknown column {shared_event!r}")
    owner = next((m for m in (doc.get("team") or {}).get("members", []) if m.get("role") == "owner"), None)
    if owner is None:
        raise ContractError(f"{path}: team.members: a member with role 'owner' (the data owner) is required")
    agency = custom["agency"]
    extract = obj["name"]
    if doc["id"] != f"{agency}__{extract}":
        raise ContractError(f"{path}: id: must be '{agency}__{extract}' (agency__extract)")
    fmt = custom["format"]
    dlv = custom["delivery"]
    return Contract(
        id=doc["id"],
        version=str(doc["version"]),
        agency=agency,
        extract=extract,
        title=doc.get("name", doc["id"]),
        agency_name=(doc.get("team") or {}).get("name") or agency,
        owner_role=owner.get("name", "data owner"),
        owner_email=owner.get("username", ""),
        delivery=Delivery(
            cadence=dlv["cadence"], mode=dlv["mode"], due_by=dlv["dueBy"],
            file_pattern=dlv["filePattern"], timezone=dlv.get("timezone", "Europe/London"),
            file_date=dlv.get("fileDate"), due_after_days=int(dlv.get("dueAfterDays", 1)), late=dlv.get("late", "reject"),
        ),
        format=FileFormat(
            type=fmt["type"], delimiter=fmt.get("delimiter", ","), encoding=fmt.get("encoding", "utf-8"),
            header_row=int(fmt.get("headerRow", 1)), sheet=fmt.get("sheet"), quote=fmt.get("quote", '"'),
            extra_columns=fmt.get("extraColumns", "reject"),
        ),
        columns=columns,
        cross_field_rules=tuple(rules),
        row_count_min=rc_min,
        row_count_max=rc_max,
        row_count_severity=rc_severity,
        freshness=freshness,
        shared_event=shared_event,
        quarantine_tolerance=float(custom.get("quarantineTolerance", 0.05)),
        retention_days=custom.get("retentionDays"),
        path=path,
    )


def load_contracts(contracts_dir: Path) -> dict[str, Contract]:
    """All agency contracts, by id. Any broken contract is an error naming its file."""
    contracts: dict[str, Contract] = {}
    for path in sorted(Path(contracts_dir).glob("*/*.odcs.yaml")):
        contract = load_contract(path)
        if contract.agency != path.parent.name or f"{contract.extract}.odcs.yaml" != path.name:
            raise ContractError(f"{path}: file must be contracts/agencies/{contract.agency}/{contract.extract}.odcs.yaml")
        contracts[contract.id] = contract
    return contracts
