"""The catalogue: the agency contracts and the data sharing protocols, as their files say now.

Both are read (parsed and schema-checked) once per process for the same files: the result is
kept under the folder and its files' names and bytes, so an edited, added or removed file is
read again. The folders default to the settings' (`contracts/agencies`, `contracts/protocols`).
"""

from __future__ import annotations

from pathlib import Path

from orchestration.partnership.contracts.model import Contract, load_contracts
from orchestration.partnership.releases.protocols import Protocol, load_protocols
from orchestration.partnership.settings import get_settings

_read: dict[str, tuple[tuple, dict]] = {}  # kind -> (key of the files read, what they gave)


def _files_key(folder: Path, pattern: str) -> tuple:
    folder = Path(folder).resolve()
    return (str(folder), tuple((f.relative_to(folder).as_posix(), f.read_bytes()) for f in sorted(folder.glob(pattern))))


def contracts(contracts_dir: Path | None = None) -> dict[str, Contract]:
    """The agency contracts by id (`<agency>__<extract>`)."""
    folder = Path(contracts_dir or get_settings().contracts_dir)
    key = _files_key(folder, "*/*.odcs.yaml")
    kept = _read.get("contracts")
    if kept is None or kept[0] != key:
        kept = _read["contracts"] = (key, load_contracts(folder))
    return kept[1]


def protocols(protocols_dir: Path | None = None) -> dict[str, Protocol]:
    """The data sharing protocols by id."""
    folder = Path(protocols_dir or get_settings().protocols_dir)
    key = _files_key(folder, "*.yaml")
    kept = _read.get("protocols")
    if kept is None or kept[0] != key:
        kept = _read["protocols"] = (key, load_protocols(folder))
    return kept[1]
