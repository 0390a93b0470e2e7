"""Contracts and protocols as the code location sees them (read from their files once)."""

from __future__ import annotations

from functools import lru_cache

from orchestration.partnership.contracts.model import Contract, load_contracts
from orchestration.partnership.releases.protocols import Protocol, load_protocols
from orchestration.partnership.settings import PROJECT_ROOT

CONTRACTS_DIR = PROJECT_ROOT / "contracts" / "agencies"
PROTOCOLS_DIR = PROJECT_ROOT / "contracts" / "protocols"


@lru_cache(maxsize=1)
def contracts() -> dict[str, Contract]:
    return load_contracts(CONTRACTS_DIR)


@lru_cache(maxsize=1)
def protocols() -> dict[str, Protocol]:
    return load_protocols(PROTOCOLS_DIR)
