"""The counts of an aggregate release's other files under the protocol's rule, as its tables are.

`data_quality.json` says, per agency and extract, how many deliveries arrived, were late or were
rejected (counts of files, published as they are) and how many rows they held and how many were
quarantined: counts of records about people, which two releases' windows could difference down
to a day's records. Those are published as counts are: empty when in the suppression range
(`rows_suppressed`), otherwise rounded to the base (`rows_rounding_base`).
"""

from __future__ import annotations

import copy

from orchestration.partnership.boardpack.quality import ROW_COUNTS


def _protected(n: int, low: int, high: int, base: int) -> int | None:
    if low <= n <= high:
        return None
    return int(n / base + 0.5) * base  # half up, as disclosure.round_to_base


def protect_quality(doc: dict, low: int, high: int, base: int) -> dict:
    """A copy of a data-quality document with every row count protected."""
    out = copy.deepcopy(doc)
    for agency in out.get("agencies", []):
        for e in agency.get("extracts", []):
            suppressed = []
            for k in ROW_COUNTS:
                e[k] = _protected(int(e[k]), low, high, base)
                if e[k] is None:
                    suppressed.append(k)
            e["rows_suppressed"] = suppressed
            e["rows_rounding_base"] = base
    return out
