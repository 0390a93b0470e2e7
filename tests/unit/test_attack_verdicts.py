"""The audit's record of blocks it found clean (releases/audit/verdicts.py): a block seen again
unchanged is not attacked again, and a record never hides what a changed holding gives away.

Oracle: the brute-force recipient (`tests/oracles/holding.py`) on the same holdings."""

from __future__ import annotations

import json

import pytest

import orchestration.partnership.releases.audit.attack as attack
import orchestration.partnership.releases.audit.verdicts as verdicts
from tests.oracles import holding as oracle
from tests.unit.test_attack import _wards, cell, frame

pytestmark = pytest.mark.dbt_free

BEFORE = {"A": 3, "B": 0, "C": 9, "D": 12}
AFTER = {"A": 4, "B": 0, "C": 9, "D": 13}  # one late referral in ward A
STATES = {"A": ("suppressed",), "B": ("published", 0, 5), "C": ("suppressed",), "D": ("published", 10, 5)}
MOVED = {**STATES, "D": ("published", 15, 5)}


def _oracle(releases: list[tuple[dict, dict]]) -> set[str]:
    """The cells the brute-force recipient finds something about (ward letter), over these releases."""
    codes = {"A": cell("ward", "E05000001"), "B": cell("ward", "E05000002"), "C": cell("ward", "E05000003"),
             "D": cell("district", "E07000001")}
    cells = {codes[k]: ((0,) if k == "A" else (1,) if k == "B" else (2,) if k == "C" else (0, 1, 2)) for k in codes}
    truths = [tuple(t[k] for k in "ABC") for t, _ in releases]
    facts = [(r, codes[k], s) for r, (_, states) in enumerate(releases) for k, s in states.items()]
    return {next(k for k, c in codes.items() if c == found) for found, _, _ in
            oracle.analyse(cells, truths, facts, codes["D"], top=7)}


def test_a_block_found_clean_is_not_attacked_again_and_a_changed_holding_is(tmp_path):
    first = frame(_wards(1, BEFORE, STATES))
    assert not _oracle([(BEFORE, STATES)])
    fresh = attack.attack(first, clean=set())
    assert not fresh.findings and fresh.blocks == 1 and len(fresh.clean) == 1 and fresh.known == 0
    kept = verdicts.path_for(tmp_path / "warehouse.duckdb", "p")
    verdicts.write(kept, fresh.clean)
    again = attack.attack(first, clean=verdicts.read(kept))
    assert again.known == 1 and again.programs == 0 and again.clean == fresh.clean and not again.findings
    # the next night: the district's rounded figure moved; the brute-force recipient finds ward A's new
    # referral, and so does the attacker with the record of the first night's clean block
    second = frame(_wards(1, BEFORE, STATES) + _wards(2, AFTER, MOVED))
    assert "A" in _oracle([(BEFORE, STATES), (AFTER, MOVED)])
    result = attack.attack(second, clean=verdicts.read(kept))
    assert result.known == 0 and any("changed between releases" in f and "E05000001" in f for f in result.findings)
    assert not result.clean, "a block with a finding is never recorded clean"


def test_the_fingerprint_covers_each_figure_and_the_count_behind_it_and_a_record_of_other_code_is_ignored(tmp_path):
    base = attack.attack(frame(_wards(1, BEFORE, STATES)), clean=set()).clean
    other_figure = attack.attack(frame(_wards(1, BEFORE, {**STATES, "B": ("published", 5, 5)})), clean=set()).clean
    other_count = attack.attack(frame(_wards(1, {**BEFORE, "C": 8}, STATES)), clean=set()).clean
    other_rule = attack.attack(frame(_wards(1, BEFORE, STATES)), rounded="not_pinned", clean=set()).clean
    assert len({frozenset(x) for x in (base, other_figure, other_count, other_rule)}) == 4
    kept = verdicts.path_for(tmp_path / "warehouse.duckdb", "p")
    verdicts.write(kept, base)
    assert verdicts.read(kept) == base
    kept.write_text(json.dumps({**json.loads(kept.read_text()), "attacker": "another version"}))
    assert verdicts.read(kept) == set()
    kept.write_text("not json")
    assert verdicts.read(kept) == set()


def test_a_record_that_cannot_be_written_leaves_the_attack_as_it_is(tmp_path):
    (tmp_path / "cache").write_text("a file where the record's folder would be")
    kept = verdicts.path_for(tmp_path / "warehouse.duckdb", "p")
    result = attack.attack(frame(_wards(1, BEFORE, STATES) + _wards(2, AFTER, MOVED)), clean=verdicts.read(kept))
    verdicts.write(kept, result.clean)
    assert not kept.exists() and any("changed between releases" in f for f in result.findings)
