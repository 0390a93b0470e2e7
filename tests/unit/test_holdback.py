"""The hold-back rule, read once by the night's dbt build and by every release: which extracts
stand rejected, what dbt leaves out for them, and which protocols they hold back."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest
import yaml

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.ingest.holdback import (
    dbt_hold_back,
    protocol_hold_back,
    standing_rejections,
)
from orchestration.partnership.releases.protocols import load_protocols
from orchestration.partnership.settings import PROJECT_ROOT

pytestmark = pytest.mark.dbt_free


def _deliveries(rows):
    con = duckdb.connect()
    con.execute("create schema ops")
    con.execute("""create table ops.deliveries (contract_id varchar, status varchar, reason_code varchar,
                   reason varchar, arrived_at timestamp)""")
    for i, (cid, status, code) in enumerate(rows):
        con.execute("insert into ops.deliveries values (?, ?, ?, ?, ?)",
                    [cid, status, code, f"{cid} #{i} {status}", datetime(2026, 11, 1 + i)])
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


MANIFEST = {
    "sources": {"source.p.valid.a__x": {"source_name": "valid", "name": "a__x"},
                "source.p.valid.b__y": {"source_name": "valid", "name": "b__y"},
                "source.p.raw.a__x": {"source_name": "raw", "name": "a__x"}},
    "child_map": {
        "source.p.valid.a__x": ["model.p.stg_a", "test.p.not_null_src_a"],
        "source.p.valid.b__y": ["model.p.stg_b"],
        "source.p.raw.a__x": ["model.p.raw_copy"],
        "model.p.stg_a": ["model.p.both", "test.p.unique_stg_a"],
        "model.p.stg_b": ["model.p.both"],
        "model.p.both": ["model.p.mart"],
        "model.p.mart": [],
    },
}


def test_dbt_leaves_out_everything_downstream_of_a_held_extracts_valid_source_and_nothing_else():
    hold = dbt_hold_back(MANIFEST, ["a__x"])
    assert hold.exclude_args == ["--exclude", "source:valid.a__x+"]
    assert hold.nodes == {"model.p.stg_a", "test.p.not_null_src_a", "test.p.unique_stg_a", "model.p.both",
                          "model.p.mart"}
    both = dbt_hold_back(MANIFEST, ["b__y", "a__x"])
    assert both.exclude_args == ["--exclude", "source:valid.a__x+ source:valid.b__y+"]
    assert "model.p.stg_b" in both.nodes and "model.p.raw_copy" not in both.nodes


def test_with_nothing_held_dbt_builds_everything():
    hold = dbt_hold_back(MANIFEST, [])
    assert hold.exclude_args == [] and hold.nodes == set()


def test_a_release_is_held_back_by_exactly_its_controllers_extracts():
    contracts = load_contracts(PROJECT_ROOT / "contracts" / "agencies")
    protocols = load_protocols(PROJECT_ROOT / "contracts" / "protocols")
    held = {cid: [f"{cid} rejected"] for cid in contracts}
    for pid, protocol in protocols.items():
        # The protocol file's own controllers, and each contract's agency from its id (<agency>__<extract>).
        controllers = yaml.safe_load((PROJECT_ROOT / "contracts" / "protocols" / f"{pid}.yaml").read_text())["controllers"]
        expected = {cid for cid in contracts if cid.split("__")[0] in controllers}
        assert expected, pid
        assert set(protocol_hold_back(protocol, contracts, held)) == expected, pid
        one = sorted(expected)[0]
        assert protocol_hold_back(protocol, contracts, {one: ["r"]}) == {one: ["r"]}
        others = {cid: ["r"] for cid in contracts if cid not in expected}
        assert protocol_hold_back(protocol, contracts, others) == {}, pid
