"""The row rules' one-select masks never drift from pandera's own verdict.

validation.py evaluates every check of the contract's pandera schema as a boolean mask in
one polars select (fast); pandera's full lazy validation of the same schema is the
reference. Both judge every generated delivery (with the generator's planted violations),
and the same deliveries with hostile values written into every column, row by row.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.demo import generate
from orchestration.partnership.settings import PROJECT_ROOT
from orchestration.partnership.validation.readers import (
    ROW_NUMBER,
    DeliveryRejected,
    read_delivery,
)
from orchestration.partnership.validation.rows import (
    RULES,
    build_schema,
    pandera_row_failures,
    row_failures,
    validate_rows,
)
from tests.conftest import DEMO_AS_OF

pytestmark = pytest.mark.dbt_free

CONTRACTS = load_contracts(PROJECT_ROOT / "contracts" / "agencies")
AS_OF = date(2026, 11, 27)
# Values that break, or nearly break, each rule kind: blanks, junk, extremes, dates in and out of range.
HOSTILE = ["?", "x" * 300, "0", "-1", "1e3", "12.5", "9999999999", "1234567890", "2099-01-01", "1899-12-31",
           "2026-02-30", "2026-11-27T25:00:00", "2026-11-26T10:00:00", "yes", "maybe", "A123456789012", "ZZ1 1ZZ"]


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("masks")
    generate(data_dir, preset="small", seed=42, as_of=DEMO_AS_OF)
    out = []
    for path in sorted((data_dir / "landing").rglob("*.*")):
        rel = path.relative_to(data_dir / "landing").parts
        contract = CONTRACTS.get(f"{rel[0]}__{rel[1]}") if len(rel) == 3 else None
        if contract is None:
            continue
        try:
            out.append((contract, path.name, read_delivery(path, contract)))
        except DeliveryRejected:
            continue
    assert len({c.id for c, _, _ in out}) == len(CONTRACTS), "a delivery of every contract is judged"
    return out


def _fast(schema, df, contract) -> set[tuple[int, str]]:
    _bad, broken = row_failures(schema, df, contract)
    long = broken.with_row_index("index").unpivot(index="index", variable_name="rule").filter(pl.col("value"))
    return {(int(i), r) for i, r in long.select("index", "rule").iter_rows()}


def _pandera(schema, df, contract) -> set[tuple[int, str]]:
    return {(int(i), r) for i, r in pandera_row_failures(schema, df, contract).iter_rows()}


def _hostile(df: pl.DataFrame, contract, step: int) -> pl.DataFrame:
    """Every contract column gets hostile values (and a repeat of row 0's value) on rows spread through the frame."""
    cols = {}
    n = df.height
    for j, col in enumerate(contract.columns):
        values = df.get_column(col.name).to_list()
        for k, v in enumerate(HOSTILE + [None, values[0]]):
            values[(1 + j * step + k * 7) % n] = v
        cols[col.name] = pl.Series(col.name, values, dtype=pl.Utf8)
    return df.with_columns(**cols)


def test_the_masks_and_pandera_agree_on_every_generated_delivery(deliveries):
    compared = 0
    for contract, name, df in deliveries:
        schema = build_schema(contract, AS_OF)
        fast, reference = _fast(schema, df, contract), _pandera(schema, df, contract)
        assert fast == reference, f"{name}: masks {sorted(fast - reference)[:5]} vs pandera {sorted(reference - fast)[:5]}"
        compared += len(reference)
    assert compared > 0, "the planted violations break some rules"


def test_the_masks_and_pandera_agree_on_hostile_values_in_every_column(deliveries):
    seen_kinds = set()
    for i, (contract, name, df) in enumerate(deliveries):
        if df.height < 40:
            continue
        hostile = _hostile(df, contract, step=3 + i % 5)
        schema = build_schema(contract, AS_OF)
        fast, reference = _fast(schema, hostile, contract), _pandera(schema, hostile, contract)
        assert fast == reference, f"{name}: masks {sorted(fast - reference)[:5]} vs pandera {sorted(reference - fast)[:5]}"
        seen_kinds |= {r.rpartition(":")[2] for _, r in reference}
    assert {"required", "pattern", "allowed_values", "date_parse", "range", "unique", "length", "type"} <= seen_kinds


def test_quarantine_lists_exactly_the_rules_pandera_finds_per_row(deliveries):
    contract, name, df = max(deliveries, key=lambda d: d[2].height)
    hostile = _hostile(df, contract, step=5)
    rows = validate_rows(hostile, contract, AS_OF)
    reference = _pandera(build_schema(contract, AS_OF), hostile, contract)
    expected: dict[int, list[str]] = {}
    for i, rule in reference:
        expected.setdefault(i + 1, []).append(rule)  # row numbers count from 1
    got = {r: list(rules) for r, rules in rows.quarantine.select(ROW_NUMBER, RULES).iter_rows()}
    assert got == {r: sorted(v) for r, v in expected.items()}
    assert rows.rows_read == hostile.height and rows.valid.height == hostile.height - len(expected)
    counts: dict[str, int] = {}
    for _, rule in reference:
        counts[rule] = counts.get(rule, 0) + 1
    assert rows.rule_counts == dict(sorted(counts.items()))
