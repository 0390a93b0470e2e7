"""What the audit's attacker proved before: the blocks it found nothing in, by a fingerprint of
each block's whole system.

A block's verdict depends on its system alone: its unknowns (cell, figure, the count behind it),
the bounds and targets their figures give them, its relations, rates and changes between
releases, the rule for rounded counts, and the attacker's own code and solver. The fingerprint
covers all of these (the code as the hash of its source files, the solver by its versions), so a
block seen again, unchanged, on a later night (every period the recipient holds as first sent)
need not be attacked again, and a changed one never matches.

The audit writes the fingerprints of the blocks it found clean, after every run, to one file per
protocol beside the warehouse (the secure zone, as the ledger); it reads only that file, which
only it writes. The release builder may read it too (it only saves work the audit does again).
A block with a finding is never kept: it is attacked again each time, to report its findings.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from functools import cache
from pathlib import Path

import numpy as np
import scipy

FOLDER = ("cache", "attacker_verdicts")


def path_for(warehouse: Path, protocol_id: str) -> Path:
    return Path(warehouse).parent.joinpath(*FOLDER, f"{protocol_id}.json")


def read(path: Path | None) -> set[str]:
    """The fingerprints of the blocks found clean by the last audit that wrote `path` with this code."""
    if path is None or not path.exists():
        return set()
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()  # unreadable: attack everything again
    return set(kept.get("clean", [])) if kept.get("attacker") == attacker_version() else set()


def write(path: Path, clean: set[str]) -> None:
    """Replace the file with this run's clean blocks (written whole, then renamed into place). A
    record that cannot be written (a full disk) is left as it was: it only saves time."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"attacker": attacker_version(), "clean": sorted(clean)}))
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


@cache
def attacker_version() -> str:
    """The attacker's source files and the solver's versions, as one hash."""
    import highspy
    import scipy.optimize._highspy._core as highs

    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in ("attack.py", "solve.py", "relaxation.py", "nearby.py", "propagate.py", "relations.py", "verdicts.py"):
        h.update((here / name).read_bytes())
    h.update(f"scipy {scipy.__version__} numpy {np.__version__} HiGHS {highs.HIGHS_VERSION_MAJOR}."
             f"{highs.HIGHS_VERSION_MINOR}.{highs.HIGHS_VERSION_PATCH} highspy {highspy.Highs().version()}".encode())
    return h.hexdigest()


def fingerprint(vs: list[int], rels: list[tuple], ratios: list[tuple], links: list[tuple], bounds: np.ndarray,
                targets: dict, keys: list[tuple], rounded: str) -> str:
    """One block's whole system, named by its unknowns' keys (never by their order in this run)."""
    name = {v: json.dumps(keys[v]) for v in vs}
    unknowns = sorted((name[v], float(bounds[v, 0]), float(bounds[v, 1]), list(targets.get(v, ()))) for v in vs)
    relations = sorted((s, name[t], sorted(name[m] for m in ms)) for s, t, ms in rels)
    rates = sorted((name[n], name[d], repr(float(value)), repr(float(k))) for n, d, value, k in ratios)
    changes = sorted((name[a], name[b]) for a, b in links)
    text = json.dumps([attacker_version(), rounded, unknowns, relations, rates, changes])
    return hashlib.sha256(text.encode()).hexdigest()
