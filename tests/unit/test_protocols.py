"""Protocol files: validated against the shipped schema, with errors naming file and key."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import pytest
import yaml

from orchestration.partnership.releases.protocols import (
    ProtocolError,
    load_protocol,
    load_protocols,
)
from orchestration.partnership.settings import PROJECT_ROOT

pytestmark = pytest.mark.dbt_free

PROTOCOLS = PROJECT_ROOT / "contracts" / "protocols"


def test_every_committed_protocol_is_valid():
    protocols = load_protocols(PROTOCOLS)
    assert "falls-board" in protocols


def _write(tmp_path: Path, doc: dict, name: str = "falls-board") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p



def test_a_misspelt_key_is_an_error_naming_the_file_and_the_key(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc["valid_untill"] = doc.pop("valid_until")
    path = _write(tmp_path, doc)
    with pytest.raises(ProtocolError) as exc:
        load_protocol(path)
    assert str(path) in str(exc.value) and "valid_untill" in str(exc.value)


def test_a_bad_date_is_an_error_naming_the_key(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc["valid_from"] = "2025-13-01"
    with pytest.raises(ProtocolError, match="valid_from"):
        load_protocol(_write(tmp_path, doc))


def test_an_aggregate_protocol_needs_disclosure_control(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc.pop("disclosure_control")
    with pytest.raises(ProtocolError, match="disclosure_control"):
        load_protocol(_write(tmp_path, doc))


def test_a_protocol_is_in_force_only_between_its_dates():
    p = load_protocol(PROTOCOLS / "falls-board.yaml")
    assert p.in_force(p.valid_from)[0] and p.in_force(p.valid_until)[0]
    ok, why = p.in_force(date(2099, 1, 1))
    assert not ok and "expired" in why
    ok, why = p.in_force(date(2000, 1, 1))
    assert not ok and "not yet in force" in why


def test_the_five_protocols_of_the_partnership_are_committed_and_only_the_asb_one_has_expired():
    protocols = load_protocols(PROTOCOLS)
    assert set(protocols) == {"falls-board", "falls-analysts", "supporting-families", "safeguarding-board", "asb-hotspots-2025"}
    day = date(2026, 11, 28)
    assert {k for k, p in protocols.items() if not p.in_force(day)[0]} == {"asb-hotspots-2025"}
    assert len({p.recipient_id for p in protocols.values()}) == 5


def test_a_person_level_protocol_cannot_release_a_direct_identifier_as_a_plain_column(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-analysts.yaml").read_text())
    doc["outputs"][0]["columns"].append("person_id")
    with pytest.raises(ProtocolError, match=r"outputs\.0\.columns.*person_id.*direct identifiers"):
        load_protocol(_write(tmp_path, doc, "falls-analysts"))


def test_a_pseudonymised_protocol_cannot_name_identifiers(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-analysts.yaml").read_text())
    doc["outputs"][0]["identifiers"] = {"person_column": "person_id", "columns": {"sex": "forename"},
                                        "sources": [{"contract": "x", "basis": "y"}]}
    with pytest.raises(ProtocolError, match="identifiers"):
        load_protocol(_write(tmp_path, doc, "falls-analysts"))


def test_a_margin_must_name_released_columns(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc["disclosure_control"]["secondary_suppression"]["margins"][0]["by"].append("ward_name")
    with pytest.raises(ProtocolError, match="margins.0"):
        load_protocol(_write(tmp_path, doc))


def test_every_controller_and_the_recipient_must_be_a_party_acting_as_a_controller(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc["parties"] = [p for p in doc["parties"] if p["id"] != "riverside_fire"]
    with pytest.raises(ProtocolError, match="parties: 'riverside_fire'"):
        load_protocol(_write(tmp_path, doc))
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    next(p for p in doc["parties"] if p["id"] == "falls-prevention-board")["role"] = "processor"
    with pytest.raises(ProtocolError, match="not processor"):
        load_protocol(_write(tmp_path, doc))


def test_data_items_name_only_contracts_of_the_controllers(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc["data_items"]["county_police__incidents"] = ["occurrence_id"]
    with pytest.raises(ProtocolError, match="data_items.county_police__incidents"):
        load_protocol(_write(tmp_path, doc))


def test_a_second_signature_block_is_refused_so_no_signed_text_hides_behind_one(tmp_path):
    path = tmp_path / "falls-board.yaml"
    text = (PROTOCOLS / "falls-board.yaml").read_text()
    path.write_text(text.replace("\ndpia:", "\nsignature:\n  text_sha256: " + "0" * 64 + "\n  signatories: []\ndpia:", 1))
    with pytest.raises(ProtocolError, match="more than one signature block"):
        load_protocol(path)


def test_the_review_date_falls_within_the_term_and_the_dpia_risk_is_a_level(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc["review_date"] = "2029-01-01"
    with pytest.raises(ProtocolError, match="review_date"):
        load_protocol(_write(tmp_path, doc))
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc["dpia"]["risk"] = "negligible"
    with pytest.raises(ProtocolError, match="dpia.risk"):
        load_protocol(_write(tmp_path, doc))


def test_each_committed_protocol_records_the_hash_of_its_text_as_signed():
    for p in load_protocols(PROTOCOLS).values():
        assert p.doc["signature"]["text_sha256"] == p.text_sha256, p.id


def test_an_alias_cannot_carry_unsigned_text_from_the_signature_block_into_the_agreement(tmp_path):
    text = (PROTOCOLS / "falls-board.yaml").read_text()
    sig = text.index("signature:")
    body, block = text[:sig], text[sig:]
    block = block.replace('name: "Dr Priya Raman"', 'name: &p "Dr Priya Raman"', 1)
    body = body.replace("purpose: >-", "purpose: *p\nold_purpose: >-", 1)
    path = tmp_path / "falls-board.yaml"
    path.write_text(block + body)  # the signature block first, so its anchor comes before the alias
    with pytest.raises(ProtocolError, match="anchors and aliases are not allowed"):
        load_protocol(path)


def test_pooled_periods_must_be_allowed_by_the_cells_and_labelled_apart(tmp_path):
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    cells = doc["outputs"][0]["row_filters"]["cells"]
    doc["outputs"][0]["row_filters"]["cells"] = [c for c in cells if c != {"geography_type": "ward", "period_type": "rolling_12_months"}]
    with pytest.raises(ProtocolError, match=r"pooled_periods\.0\.label: outputs\.0\.row_filters\.cells allows no "
                                            r"\{geography_type: ward, period_type: rolling_12_months\}"):
        load_protocol(_write(tmp_path, doc))
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc["disclosure_control"]["pooled_periods"].append(copy.deepcopy(doc["disclosure_control"]["pooled_periods"][0]))
    with pytest.raises(ProtocolError, match=r"pooled_periods\.0\.label: 'rolling_12_months' is the label of another"):
        load_protocol(_write(tmp_path, doc))
    doc = yaml.safe_load((PROTOCOLS / "falls-board.yaml").read_text())
    doc["disclosure_control"]["pooled_periods"][0]["label"] = "quarter"
    with pytest.raises(ProtocolError, match="pooled_periods"):
        load_protocol(_write(tmp_path, doc))
