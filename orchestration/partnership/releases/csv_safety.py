"""Spreadsheet-safe CSV: delivered values are data, never formulas, wherever the product writes them.

A value beginning with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by
spreadsheet programs (`=HYPERLINK(...)`, `+cmd|...`, `@SUM(...)`, `-1+1`). Following the OWASP
advice on CSV injection, such a text value is written with a single quote in front, so that it
shows as the text it is; numbers, dates and other typed values are written as they are. The
warehouse keeps the value exactly as delivered: this applies to outputs only.
"""

from __future__ import annotations

import csv
from typing import IO, Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """The value as it may go into a CSV or spreadsheet cell."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(fh: IO[str], columns: Iterable[object], rows: Iterable[Iterable[object]]) -> None:
    """A CSV with every text cell (the header too) neutralised."""
    w = csv.writer(fh)
    w.writerow([neutralise(c) for c in columns])
    for row in rows:
        w.writerow([neutralise(v) for v in row])
