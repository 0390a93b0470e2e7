"""The hold-back rule, read by every release: which extracts stand rejected or unprocessed, and
which protocols they hold back (those whose release lineage reads them)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from orchestration.partnership.ingest.holdback import (
    UNPROCESSED,
    protocol_hold_back,
    standing_rejections,
)
from orchestration.partnership.releases.lineage import Lineage
from orchestration.partnership.releases.protocols import load_protocols
from orchestration.partnership.settings import PROJECT_ROOT

pytestmark = pytest.mark.dbt_free


def _deliveries(rows):
    con = duckdb.connect()
    con.execute("create schema ops")
    con.execute("""create table ops.deliveries (contract_id varchar, status varchar, reason_code varchar,
                   reason varchar, arrived_at timestamp, file_name varchar)""")
    for i, (cid, status, code) in enumerate(rows):
        con.execute("insert into ops.deliveries values (?, ?, ?, ?, ?, ?)",
                    [cid, status, code, f"{cid} #{i} {status}", datetime(2026, 11, 1 + i), f"f{i}.csv"])
    return con


def test_a_rejection_stands_until_an_accepted_delivery_of_the_same_extract_follows():
    con = _deliveries([
        ("a__x", "rejected", "schema"),    # followed by an accepted one: no longer stands
        ("a__x", "accepted", None),
        ("b__y", "accepted", None),
        ("b__y", "rejected", "rule"),      # the latest of b__y: stands
        ("b__y", "rejected", "encoding"),  # stands too, after it
        ("c__z", "rejected", "duplicate"),  # a duplicate holds nothing back
        (None, "rejected", "unknown"),     # no contract: nothing to hold back
        ("d__w", "rejected", "schema"),
        ("a__x", "rejected", "rule"),      # a new rejection after the accepted one stands again
    ])
    assert standing_rejections(con) == {
        "a__x": ["a__x #8 rejected"],
        "b__y": ["b__y #3 rejected", "b__y #4 rejected"],
        "d__w": ["d__w #7 rejected"],
    }


def test_a_delivery_left_registered_by_a_failed_step_holds_its_extract_back_until_processed():
    con = _deliveries([("a__x", "accepted", None), ("a__x", "registered", None), ("b__y", "rejected", "late")])
    assert standing_rejections(con) == {"a__x": [f"f1.csv{UNPROCESSED}"], "b__y": ["b__y #2 rejected"]}
    con.execute("update ops.deliveries set status = 'accepted' where status = 'registered'")
    assert standing_rejections(con) == {"b__y": ["b__y #2 rejected"]}


def test_a_release_is_held_back_by_exactly_the_held_extracts_its_lineage_reads():
    protocols = load_protocols(PROJECT_ROOT / "contracts" / "protocols")
    reads = {"falls-board": frozenset({"a__x", "c__z"}), "safeguarding-board": frozenset({"b__y"})}
    lineage = Lineage(models={}, indicators={}, releases=reads)
    held = {"a__x": ["a__x late"], "d__w": ["d__w unreadable"]}
    assert protocol_hold_back(protocols["falls-board"], lineage, held) == {"a__x": ["a__x late"]}
    assert protocol_hold_back(protocols["safeguarding-board"], lineage, held) == {}
    assert protocol_hold_back(protocols["falls-board"], lineage, {}) == {}
