"""Protocol files: validated against the shipped schema, with errors naming file and key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from orchestration.partnership.protocols import ProtocolError, load_protocol, load_protocols
from orchestration.partnership.settings import PROJECT_ROOT

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
