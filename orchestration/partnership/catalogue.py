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


def _kept(kind: str, folder: Path, pattern: str, load):
    """What `load(folder)` gave for the files `pattern` names, read again only when they changed."""
    key = _files_key(folder, pattern)
    kept = _read.get(kind)
    if kept is None or kept[0] != key:
        kept = _read[kind] = (key, load(folder))
    return kept[1]


def contracts(contracts_dir: Path | None = None) -> dict[str, Contract]:
    """The agency contracts by id (`<agency>__<extract>`)."""
    return _kept("contracts", Path(contracts_dir or get_settings().contracts_dir), "*/*.odcs.yaml", load_contracts)


def protocols(protocols_dir: Path | None = None) -> dict[str, Protocol]:
    """The data sharing protocols by id."""
    return _kept("protocols", Path(protocols_dir or get_settings().protocols_dir), "*.yaml", load_protocols)
