"""A recipient's holding over several releases: the ledger (a real DuckDB file), held cells, and
the audit's attacker as the gate, checked at the end by the brute-force recipient."""

from __future__ import annotations

import json
import random
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.releases.protection as protection
from orchestration.partnership.releases import differencing, ledger
from orchestration.partnership.releases.audit import holding as holding_audit
from orchestration.partnership.releases.protocols import Protocol
from tests.oracles import holding as oracle

COLUMNS = ["indicator_id", "period_type", "period_start", "geography_type", "geography_code", "breakdown", "n"]
OUT = {"table": "indicator_values", "source": "marts.x", "columns": COLUMNS, "counts": ["n"]}
MARGINS = [
    {"name": "wards within the district", "by": ["indicator_id", "period_type", "period_start", "breakdown"],
     "column": "geography_type", "total": "district", "members": ["ward"]},
    {"name": "sex within persons", "by": ["indicator_id", "period_type", "period_start", "geography_type", "geography_code"],
     "column": "breakdown", "total": "persons", "members_prefix": "sex:"},
]


def protocol(pid: str = "board", recipient: str = "the-board", base: int = 5) -> Protocol:
    doc = {"id": pid, "version": "1.0.0", "level": "aggregate", "recipient": {"id": recipient}, "outputs": [OUT],
           "disclosure_control": {"suppress_counts_from": 1, "suppress_counts_to": 7, "rounding_base": base,
                                  "secondary_suppression": {"margins": MARGINS}}}
    return Protocol(doc, Path(f"{pid}.yaml"))


def table(leaves: dict[tuple[int, str], int], wards: int, period: date = date(2025, 4, 1)) -> pl.DataFrame:
    rows = []
    for geo in list(range(wards)) + ["district"]:
        for b in ("persons", "sex:F", "sex:M"):
            n = sum(v for (w, s), v in leaves.items() if (geo == "district" or w == geo) and b in ("persons", f"sex:{s}"))
            code = "E07000001" if geo == "district" else f"E0500000{geo}"
            rows.append(("I1", "quarter", period, "district" if geo == "district" else "ward", code, b, n))
    return pl.DataFrame(rows, schema=COLUMNS, orient="row").sort(COLUMNS[:-1])


def build(p: Protocol, raw: pl.DataFrame, con: duckdb.DuckDBPyConnection, hold: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The builder: disclosure control, then (when holding) the recipient's cells carried over."""
    dc = p.disclosure
    protected = disclosure.apply(raw, ["n"], [], dc["suppress_counts_from"], dc["suppress_counts_to"], dc["rounding_base"],
                                 p.margins)
    held_truth = {}
    if hold:
        protected, held_truth = differencing.hold(p, OUT, protected, raw, ledger.latest(con, p.recipient_id))
    pending = ledger.figures(p, {OUT["table"]: protected}, {OUT["table"]: raw}, held_truth)
    return protected, pending


def publish(folder: Path, df: pl.DataFrame) -> None:
    (folder / "parquet").mkdir(parents=True, exist_ok=True)
    df.write_parquet(folder / "parquet" / f"{OUT['table']}.parquet")


# ---------------------------------------------------------------- the ledger

def test_the_ledger_adds_a_row_only_when_a_figure_or_the_count_behind_it_changes(tmp_path):
    p = protocol()
    raw = table({(0, "F"): 9, (0, "M"): 12, (1, "F"): 3, (1, "M"): 20}, wards=2)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        protected, pending = build(p, raw, con, hold=True)
        assert ledger.record(con, p.recipient_id, p.id, 1, date(2026, 1, 1), pending) == raw.height
        assert ledger.record(con, p.recipient_id, p.id, 2, date(2026, 1, 2), pending) == 0
        later = raw.with_columns(pl.when(pl.col("geography_code") == "E05000001").then(pl.col("n") + 1).otherwise(pl.col("n")))
        _, again = build(p, later, con, hold=True)
        added = ledger.record(con, p.recipient_id, p.id, 3, date(2026, 1, 3), again)
        assert 0 < added < raw.height  # the changed counts only, their figures held
        h = ledger.holding(con, p.recipient_id)
        assert h.height == raw.height + added and h["seq"].to_list() == sorted(h["seq"].to_list())


def test_two_protocols_to_one_recipient_share_one_holding_and_other_recipients_see_none_of_it(tmp_path):
    raw = table({(0, "F"): 9, (0, "M"): 12, (1, "F"): 3, (1, "M"): 20}, wards=2)
    a, b, other = protocol("board-a"), protocol("board-b"), protocol("elsewhere", recipient="someone-else")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        _, pending = build(a, raw, con, hold=True)
        ledger.record(con, a.recipient_id, a.id, 1, date(2026, 1, 1), pending)
        # the second protocol's table is held to what the recipient has from the first
        protected, pending_b = build(b, raw.with_columns(pl.col("n") + 2), con, hold=True)
        first = ledger.latest(con, a.recipient_id).filter(pl.col("figure") == "n")
        assert sorted(protected["n"].to_list(), key=str) == sorted(
            [None if v is None else int(v) for v in first["value"].to_list()], key=str)
        assert ledger.holding(con, other.recipient_id).height == 0
        _, pending_o = build(other, raw.with_columns(pl.col("n") + 2), con, hold=True)
        assert pending_o["figure_true_value"].to_list() == pending_o["true_value"].to_list(), "nothing held for another recipient"


def test_a_held_cell_is_sent_again_exactly_as_first_sent_and_only_new_cells_are_computed(tmp_path):
    p = protocol()
    q1 = {(0, "F"): 9, (0, "M"): 12, (1, "F"): 3, (1, "M"): 20}
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        first, pending = build(p, table(q1, 2), con, hold=True)
        ledger.record(con, p.recipient_id, p.id, 1, date(2026, 7, 2), pending)
        late = {**q1, (1, "F"): 4}  # a late record for the first quarter
        q2 = {(0, "F"): 30, (0, "M"): 2, (1, "F"): 11, (1, "M"): 14}
        raw = pl.concat([table(late, 2), table(q2, 2, date(2025, 7, 1))]).sort(COLUMNS[:-1])
        second, pending = build(p, raw, con, hold=True)
        old = second.filter(pl.col("period_start") == date(2025, 4, 1))
        assert old.equals(first), "the first quarter is sent again exactly as it was"
        fresh = build(p, table(q2, 2, date(2025, 7, 1)), con, hold=False)[0]
        assert second.filter(pl.col("period_start") == date(2025, 7, 1)).equals(fresh)
        truth = pending.filter(pl.col("cell").str.contains("2025-04-01") & pl.col("cell").str.contains("E05000001")
                               & pl.col("cell").str.contains("sex:F"))
        assert truth.select("true_value", "figure_true_value").row(0) == (4.0, 3.0), "the ledger knows what changed"


# ---------------------------------------------------------------- histories through the gate

def build_closed(p: Protocol, raw: pl.DataFrame, con: duckdb.DuckDBPyConnection, hold: bool = True
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The release's whole disclosure control (`protection.against_holding`): structure, held cells,
    and closing against the recipient's holding until its attacker proves nothing."""
    latest = ledger.latest(con, p.recipient_id)
    history = ledger.holding(con, p.recipient_id) if latest.height else None
    tables, truth, held_truth = protection.against_holding(con, p, {OUT["table"]: raw}, latest if latest.height else None,
                                                          history)
    return tables[OUT["table"]], ledger.figures(p, tables, truth, held_truth)


def _history(seed: int, hold: bool, builder=build, small: bool = True):
    """Two nights: a table, then late events in some of its finest cells. Each night is built, held
    (or not), audited against the holding so far, and recorded in the ledger only when it passes."""
    rng = random.Random(seed)
    wards = 2 if small else 3
    leaves = oracle.leaves_of(wards, ["F", "M"] if small else ["F"])  # not small: three wards, no M at all
    truths = [tuple(rng.choice([0, 0, 1, 2, 3, 5]) if small else rng.randint(6, 20) for _ in leaves)]
    truths.append(tuple(t + (rng.random() < 0.3) * rng.randint(1, 2) for t in truths[0]))
    p = protocol(base=rng.choice([1, 3, 5]))
    published = []
    with tempfile.TemporaryDirectory() as tmp, duckdb.connect(str(Path(tmp) / "w.duckdb")) as con:
        for night, truth in enumerate(truths):
            raw = table(dict(zip(leaves, truth)), wards)
            df, pending = builder(p, raw, con, hold)
            folder = Path(tmp) / f"night{night}"
            publish(folder, df)
            problems, _ = holding_audit.check(folder, p, con, pending)
            if not problems:
                ledger.record(con, p.recipient_id, p.id, night + 1, date(2026, 1, 1 + night), pending)
                published.append(night)
        held = ledger.holding(con, p.recipient_id)
    return leaves, truths, held, published


def _facts(leaves, truths, held: pl.DataFrame):
    """The holding as the brute-force recipient takes it: cells as sums of finest cells, and each
    figure as a fact about the night whose counts it was computed from."""
    cells = {}
    for c in held["cell"].unique().to_list():
        k = json.loads(c)
        ward = None if k["geography_type"] == "district" else int(k["geography_code"][-1])
        sex = None if k["breakdown"] == "persons" else k["breakdown"][4:]
        cells[c] = tuple(i for i, (w, s) in enumerate(leaves) if ward in (None, w) and sex in (None, s))
    facts = set()
    nights = sorted(set(held["seq"].to_list()))
    for seq, c, value, sup, base, ftruth in held.select("seq", "cell", "value", "suppressed", "rounding_base",
                                                         "figure_true_value").iter_rows():
        # a figure describes the night whose count it was computed from (a held one, the first night's)
        night = seq - 1 if sum(truths[seq - 1][i] for i in cells[c]) == ftruth else 0
        facts.add((night, c, ("suppressed",) if sup else ("published", value, base)))
    grand = next(c for c in cells if len(cells[c]) == len(leaves))
    return cells, [truths[n] for n in range(max(nights))], sorted(facts), grand


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_nothing_in_a_holding_that_passed_the_audit_night_after_night_is_recovered_by_brute_force(seed, hold):
    leaves, truths, held, published = _history(seed, hold)
    if not published:
        return
    cells, truths_held, facts, grand = _facts(leaves, truths, held)
    assert not oracle.analyse(cells, truths_held, facts, grand, cap=sum(max(t) for t in zip(*truths)) + 12)

@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_whole_builder_passes_the_audit_and_leaves_nothing_for_brute_force_to_find_or_narrow(seed):
    """Every night built by the release's disclosure control (closing included, `full_interval`) passes
    the audit, and nothing in the holding is recovered, told from zero, narrowed below its rounding or
    shown to have changed, by the brute-force recipient. Three wards of 6 to 20: most cells are
    published, so a district and its wards rounded apart are common."""
    leaves, truths, held, published = _history(seed, True, build_closed, small=False)
    assert published == [0, 1], "closing leaves the audit nothing to block"
    cells, truths_held, facts, grand = _facts(leaves, truths, held)
    assert not oracle.analyse(cells, truths_held, facts, grand, cap=sum(max(t) for t in zip(*truths)) + 12, top=7)


def test_without_holding_the_gate_stops_a_second_night_that_gives_a_change_away():
    stopped = [seed for seed in range(10) if _history(seed, hold=False)[3] == [0]]
    assert stopped, "some second nights must be blocked for the property above to mean anything"
