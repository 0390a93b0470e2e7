"""One engine judges a delivered file against its contract: the nightly run and `partnership check` call it.

Order of judgement: file name and timeliness (the contract's timing rule, contracts/timing.py),
reading (encoding, format, header), duplicate of an accepted delivery, every row rule (pandera,
rows.py, which also names them), then the batch rules (the Great Expectations suite, batch.py). A failure at file level, or a batch rule of error
severity, rejects the whole delivery; batch rules of warning severity, a late delivery whose
contract says `late: warn`, and a quarantined share above the contract's tolerance warn.

The engine reads; it never writes to the warehouse. What it returns is safe to show the
agency's own data owner: messages name files, rules and row numbers; example values are
masked when the column is classified as identifying.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.contracts.timing import NoFileDate, due_at, is_late
from orchestration.partnership.validation.batch import Pending, start_suite
from orchestration.partnership.validation.readers import (
    ROW_NUMBER,
    DeliveryRejected,
    read_delivery,
)
from orchestration.partnership.validation.rows import RULES, RowValidation, validate_rows

EXAMPLES_PER_RULE = 3
_IDENTIFYING = ("direct_identifier", "quasi_identifier", "special_category")


@dataclass
class RuleResult:
    rule: str  # e.g. `nhs_number:pattern`, `row_count`, `late`
    level: str  # file | row | batch
    severity: str  # error (rejects, or quarantines the row) | warning
    passed: bool
    failing_rows: int | None = None
    observed: str | None = None
    expected: str | None = None
    examples: list[dict] = field(default_factory=list)  # {"row": n, "values": {column: masked value}}


@dataclass
class Assessment:
    contract_id: str
    contract_version: str
    agency: str
    file_name: str
    sha256: str
    arrived_at: datetime  # UTC, naive
    due_at: datetime | None  # UTC, naive
    status: str = "accepted"  # accepted | rejected
    reason_code: str | None = None
    reason: str | None = None
    late: bool = False
    rows_read: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rules: list[RuleResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    text: pl.DataFrame | None = field(default=None, repr=False)
    rows: RowValidation | None = field(default=None, repr=False)
    notification: str | None = None  # what the data owner was sent, if anything

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def rule_counts(self) -> dict[str, int]:
        return self.rows.rule_counts if self.rows else {}

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("text", "rows")}  # noqa: C416
        for k in ("arrived_at", "due_at"):
            d[k] = d[k].isoformat(sep=" ") + "Z" if d[k] else None
        d["rule_counts"] = self.rule_counts
        return d


def mask(value: str | None, classification: str) -> str | None:
    """An identifying value keeps its shape only (9 for a digit, A/a for a letter); others are shown, cut to 40."""
    if value is None:
        return None
    if classification in _IDENTIFYING:
        return re.sub(r"[a-z]", "a", re.sub(r"[A-Z]", "A", re.sub(r"[0-9]", "9", value)))[:40]
    return value if len(value) <= 40 else value[:39] + "…"


def _row_rule_results(contract: Contract, rows: RowValidation) -> list[RuleResult]:
    """Pass/fail of every row rule of the contract, with failing-row counts and masked examples."""
    q = rows.quarantine
    out = []
    exploded = q.select(ROW_NUMBER, RULES).explode(RULES) if q.height else None
    for name in rows.rules:
        n = rows.rule_counts.get(name, 0)
        examples = []
        if n and exploded is not None:
            first = exploded.filter(pl.col(RULES) == name).get_column(ROW_NUMBER).head(EXAMPLES_PER_RULE).to_list()
            cols = _rule_columns(contract, name)
            sample = q.filter(pl.col(ROW_NUMBER).is_in(first)).select([ROW_NUMBER, *cols])
            for rec in sample.iter_rows(named=True):
                examples.append({"row": rec[ROW_NUMBER],
                                 "values": {c: mask(rec[c], contract.column(c).classification) for c in cols}})
        out.append(RuleResult(name, "row", "error", n == 0, failing_rows=n, examples=examples))
    return out


def _rule_columns(contract: Contract, rule: str) -> list[str]:
    target, _, kind = rule.rpartition(":")
    if kind == "cross_field":
        r = next(r for r in contract.cross_field_rules if r.name == target)
        return [r.left, r.right]
    return [c for c in target.split("+") if c in contract.column_names]


def _reject(a: Assessment, code: str, message: str) -> Assessment:
    a.status, a.reason_code, a.reason = "rejected", code, message
    a.rules.append(RuleResult(code, "file" if code not in _BATCH_CODES else "batch", "error", False, observed=message))
    return a


_BATCH_CODES = ("row_count", "null_rate", "freshness")


def assess(path: Path, contract: Contract, *, file_name: str, sha256: str, arrived_at: datetime,
           duplicate_of: int | None = None, docs_dir: Path | None = None, label: str | None = None) -> Assessment:
    """Judge one delivered file. `arrived_at` is UTC (naive); `duplicate_of` is the accepted delivery with the same bytes."""
    a, batch = assess_rows(path, contract, file_name=file_name, sha256=sha256, arrived_at=arrived_at,
                           duplicate_of=duplicate_of, docs_dir=docs_dir, label=label)
    return judge_batch(a, batch, contract) if batch is not None else a


def assess_rows(path: Path, contract: Contract, *, file_name: str, sha256: str, arrived_at: datetime,
                duplicate_of: int | None = None, docs_dir: Path | None = None,
                label: str | None = None) -> tuple[Assessment, Pending | None]:
    """`assess` up to the batch rules: the file-level and row rules judged, the batch suite started
    (in the GX worker, when a night has one). Then `judge_batch(a, batch, contract)` finishes the
    verdict; the night loads the rows in between. The batch is None when the file is already rejected."""
    a = Assessment(contract.id, contract.version, contract.agency, file_name, sha256, arrived_at, None)
    try:
        a.due_at = due_at(contract, file_name)
    except NoFileDate as exc:
        return _reject(a, "file_name", str(exc)), None
    if a.due_at is not None:
        a.late = is_late(a.due_at, arrived_at)
        late_msg = (f"{file_name}: arrived {arrived_at:%Y-%m-%d %H:%M} UTC, due by {a.due_at:%Y-%m-%d %H:%M} UTC "
                    f"({contract.delivery.due_by} {contract.delivery.timezone})")
        if a.late and contract.delivery.late == "reject":
            return _reject(a, "late", late_msg + "; the contract rejects late deliveries"), None
        a.rules.append(RuleResult("late", "file", "warning" if contract.delivery.late == "warn" else "error", not a.late,
                                  observed=f"arrived {arrived_at:%Y-%m-%d %H:%M} UTC",
                                  expected=f"by {a.due_at:%Y-%m-%d %H:%M} UTC"))
        if a.late:
            a.warnings.append(f"late ({late_msg})")
    try:
        text = read_delivery(path, contract, file_name)
    except DeliveryRejected as rej:
        return _reject(a, rej.code, rej.message), None
    a.rules.append(RuleResult("readable", "file", "error", True, observed=f"{text.height} rows, {len(contract.columns)} columns"))
    if duplicate_of is not None and text.height > 0:  # two empty days have the same bytes, and are not duplicates
        return _reject(a, "duplicate", f"{file_name}: identical to delivery {duplicate_of}, already loaded"), None
    a.rules.append(RuleResult("duplicate", "file", "error", True, observed="no accepted delivery has the same bytes"))
    rows = validate_rows(text, contract, as_of=arrived_at.date())
    assert rows.rows_read == text.height, "conservation: rows read must equal valid + quarantined"
    a.text, a.rows = text, rows
    a.rows_read, a.rows_valid, a.rows_quarantined = text.height, rows.valid.height, rows.quarantine.height
    batch = start_suite(contract, text, rows.valid, arrived_at, label or file_name, docs_dir)
    a.rules += _row_rule_results(contract, rows)
    return a, batch


def judge_batch(a: Assessment, batch: Pending, contract: Contract) -> Assessment:
    """The batch rules' verdicts (waiting for the suite), then the quarantined share: `assess`'s last part."""
    file_name = a.file_name
    for b in batch.result():
        a.rules.append(RuleResult(b.rule, "batch", b.severity, b.passed, observed=b.observed, expected=b.expected))
        if b.passed:
            continue
        if b.severity == "error":
            code = b.rule.rpartition(":")[2] if ":" in b.rule else b.rule
            a.status, a.reason_code = "rejected", code
            a.reason = f"{file_name}: batch rule {b.rule} failed: {b.observed}; the contract expects {b.expected}"
        else:
            a.warnings.append(f"{b.rule} ({b.observed}; {b.expected})")
    if a.status == "accepted" and a.rows_read and a.rows_quarantined / a.rows_read > contract.quarantine_tolerance:
        a.warnings.append(f"quarantine_rate ({a.rows_quarantined / a.rows_read:.1%} of rows; tolerance {contract.quarantine_tolerance:.0%})")
    a.rules.append(RuleResult("quarantine_rate", "batch", "warning",
                              not a.rows_read or a.rows_quarantined / a.rows_read <= contract.quarantine_tolerance,
                              failing_rows=a.rows_quarantined,
                              observed=f"{(a.rows_quarantined / a.rows_read if a.rows_read else 0):.1%} of rows quarantined",
                              expected=f"at most {contract.quarantine_tolerance:.0%}"))
    return a
