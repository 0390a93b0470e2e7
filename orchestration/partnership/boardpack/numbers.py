"""How the pack writes numbers: one place, so the tests and the page agree on precision."""

from __future__ import annotations

VALUE_DECIMALS = 1


def printed(v: float | None) -> float | None:
    """A value as the pack prints it (rounded to VALUE_DECIMALS): what comparisons are made on."""
    return None if v is None else round(v, VALUE_DECIMALS)


def fmt_value(v: float | None) -> str:
    """An indicator value, interval limit or target: one decimal place, thousands separated."""
    return "" if v is None else f"{v:,.{VALUE_DECIMALS}f}"


def fmt_count(n: int | None) -> str:
    return "" if n is None else f"{n:,d}"


def fmt_signed(v: float) -> str:
    return ("+" if v > 0 else "−" if v < 0 else "±") + fmt_value(abs(v))


def fmt_percent_change(r: float | None) -> str:
    return "" if r is None else ("+" if r > 0 else "−" if r < 0 else "±") + f"{abs(r):.0%}"
