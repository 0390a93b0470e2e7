"""The partnership's contracts and protocols as the portal knows them, read from the project's
`contracts/` through the domain loaders and kept while their files are unchanged."""

from __future__ import annotations

import time
from functools import lru_cache

from orchestration.partnership.contracts.model import Contract, load_contracts
from orchestration.partnership.releases.protocols import Protocol, load_protocols
from orchestration.partnership.settings import get_settings


def _stamp(folder) -> tuple:
    """The folder's files and their change times, looked at no more than once a second."""
    now = time.monotonic()
    seen = _stamps.get(str(folder))
    if seen and now - seen[0] < 1.0:
        return seen[1]
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*.yaml")))
    _stamps[str(folder)] = (now, stamp)
    return stamp


_stamps: dict[str, tuple[float, tuple]] = {}


@lru_cache(maxsize=2)
def _protocols(folder: str, stamp: tuple) -> dict[str, Protocol]:
    return load_protocols(folder)


@lru_cache(maxsize=2)
def _contracts(folder: str, stamp: tuple) -> dict[str, Contract]:
    return load_contracts(folder)


def protocols() -> dict[str, Protocol]:
    folder = get_settings().protocols_dir
    return _protocols(str(folder), _stamp(folder))


def contracts() -> dict[str, Contract]:
    folder = get_settings().contracts_dir
    return _contracts(str(folder), _stamp(folder))


def agencies() -> list[str]:
    return sorted({c.agency for c in contracts().values()})


def agency_contracts(agency: str) -> dict[str, Contract]:
    return {cid: c for cid, c in sorted(contracts().items()) if c.agency == agency}


def board_protocols() -> dict[str, Protocol]:
    """Aggregate protocols: those whose releases carry a board pack."""
    return {pid: p for pid, p in protocols().items() if p.level == "aggregate"}
