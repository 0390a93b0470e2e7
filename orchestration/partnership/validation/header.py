"""What every reader shares: the whole-delivery rejection, and the header's rule against the contract.

Messages are safe to show the agency's data owner: they name the file, the column, the row and
the rule, never a value (a column name is shown escaped and cut short: it may be data put on
the header line by mistake)."""

from __future__ import annotations

from orchestration.partnership.contracts.model import Contract

ROW_NUMBER = "_row_number"
_SHOWN_NAMES = 10


class DeliveryRejected(Exception):
    """The whole delivery fails its contract. `code` is the rule kind; the message is safe to show."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def show(text: str) -> str:
    """A column name as it may be quoted to a data owner: control characters escaped, cut to 40."""
    shown = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return shown if len(shown) <= 40 else shown[:39] + "…"


def names(found: list[str]) -> str:
    listed = [show(n) for n in found[:_SHOWN_NAMES]]
    more = f" and {len(found) - _SHOWN_NAMES} more" if len(found) > _SHOWN_NAMES else ""
    return f"{listed}{more}"


def header_check(columns: list[str], contract: Contract, name: str) -> None:
    expected = contract.column_names
    if columns and not set(columns) & set(expected):
        # Most likely data on the header line (no header, or the wrong header row): never quote it.
        raise DeliveryRejected("header", f"{name}: the header line holds none of the contract's {len(expected)} column names "
                                         f"({len(columns)} names found); is the header missing, or on another line?")
    seen: set[str] = set()
    dupes = sorted({c for c in columns if c in seen or seen.add(c)})
    if dupes:
        raise DeliveryRejected("header", f"{name}: duplicated column names {names(dupes)}")
    missing_required = [c.name for c in contract.columns if c.required and c.name not in columns]
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    if missing_required:
        hint = f"; unexpected columns {names(extra)} (renamed?)" if extra else ""
        raise DeliveryRejected("missing_columns", f"{name}: required columns missing: {missing_required}{hint}")
    if extra and contract.format.extra_columns == "reject":
        raise DeliveryRejected("extra_columns", f"{name}: columns not in the contract: {names(extra)}")
    if missing:
        raise DeliveryRejected("missing_columns", f"{name}: columns missing: {missing}")
