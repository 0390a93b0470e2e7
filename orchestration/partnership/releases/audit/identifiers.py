"""The audit's scan for identifiers in everything that leaves: values shaped like NHS numbers
(valid check digit) or postcodes, NHS numbers and full names of the identity schema, in every
text column, NHS-number-sized integer column and text file of the release."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from orchestration.partnership.releases.audit.files import TEXT_FILES
from orchestration.partnership.releases.protocols import Protocol

if TYPE_CHECKING:
    from orchestration.partnership.releases.audit.zone import Zone

NHS_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![0-9A-Za-z])")
POSTCODE = re.compile(r"(?<![A-Za-z0-9])([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})(?![A-Za-z0-9])")
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
HEX_VALUE = re.compile(r"[0-9a-f]{64}")  # a pseudonym's shape
HEX_LETTERS = re.compile(r"[a-f]+")  # the words `WORD` finds in one


def nhs_check_digit_ok(digits: str) -> bool:
    """Modulus 11 over the first nine digits (weights 10..2); 10 is never valid, 11 means 0."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def string_values(df: pl.DataFrame, skip: set[str]) -> list[tuple[str, Counter[str]]]:
    """Text columns' values, and integers of NHS-number size as text (a number column can carry one
    too), each column's as a count of each distinct value (counted by polars: a column of age bands
    has a handful of values in a hundred thousand rows)."""
    out = []
    for c, dt in df.schema.items():
        if c in skip:
            continue
        if dt in (pl.Utf8, pl.String, pl.Categorical):
            col = df[c].cast(pl.Utf8).drop_nulls()
        elif dt.is_integer():
            col = df[c].drop_nulls()
            col = col if dt == pl.UInt64 else col.cast(pl.Int64)  # room for the bounds
            col = col.filter(col.is_between(10**9, 10**10, closed="left")).cast(pl.Utf8)
        else:
            continue
        vc = col.value_counts()
        out.append((c, Counter(dict(zip(vc[c].to_list(), vc["count"].to_list())))))
    return out


def columns_holding(df: pl.DataFrame, values: set[str]) -> list[str]:
    """The columns of `df` `string_values` reads (text, and integers of NHS-number size as text) that hold
    any of `values`; text columns are matched in polars, without a Python string per row."""
    found = []
    wanted = pl.Series(sorted(values), dtype=pl.Utf8)
    for c, dt in df.schema.items():
        if dt in (pl.Utf8, pl.String, pl.Categorical):
            if df[c].cast(pl.Utf8).is_in(wanted).any():
                found.append(c)
        elif dt.is_integer() and values & {str(v) for v in df[c].to_list() if v is not None and 10**9 <= v < 10**10}:
            found.append(c)
    return found


def identifier_findings(where: str, values: list[str] | Counter[str], zone: Zone | None, exact_names: bool) -> list[str]:
    """The findings for `values` (a list, or a count of each distinct value) found at `where`: how
    many look like NHS numbers or postcodes, are NHS numbers of the identity schema, or hold one of
    its full names (`exact_names`: also a value that is one of its names alone). Without `zone`,
    only the shapes are looked for. A finding never quotes a value."""
    nhs = postcodes = names = 0
    found: Counter[str] = Counter()  # every NHS-number-shaped match, valid check digit or not
    # each distinct value is read once and counted as often as it occurs (a column of age bands or
    # agencies has a handful of values in a million rows)
    for v, n in (values if isinstance(values, Counter) else Counter(values)).items():
        if HEX_VALUE.fullmatch(v):
            # A pseudonym's shape (most values of a person-level release), checked the same way, only
            # faster: within 64 letters and digits no NHS-number match can find its boundaries, no
            # postcode has a capital letter, the value is its own case fold, and its words (runs of
            # a-f) can only form the full names made of those letters.
            if zone:
                if exact_names and v in zone.names:
                    names += n
                elif zone.hex_pairs:
                    words = HEX_LETTERS.findall(v)
                    names += n * sum((a, b) in zone.hex_pairs for a, b in zip(words, words[1:]))
            continue
        for m in NHS_NUMBER.finditer(v):
            digits = "".join(m.groups())
            found[digits] += n
            if nhs_check_digit_ok(digits):
                nhs += n
        postcodes += n * len(POSTCODE.findall(v))
        if zone:
            if exact_names and v.casefold().strip() in zone.names:
                names += n
            else:
                words = [w.casefold() for w in WORD.findall(v)]
                names += n * sum((a, b) in zone.full_names for a, b in zip(words, words[1:]))
    known = zone.known_nhs(set(found)) if zone and found else set()
    known_nhs = sum(n for d, n in found.items() if d in known)
    out = []
    if nhs:
        out.append(f"{where}: {nhs} values shaped like NHS numbers (valid check digit)")
    if known_nhs:
        out.append(f"{where}: {known_nhs} NHS numbers from the identity schema")
    if postcodes:
        out.append(f"{where}: {postcodes} values shaped like postcodes")
    if names:
        out.append(f"{where}: {names} names from the identity schema")
    return out


def check_identifiers(folder: Path, protocol: Protocol, tables: dict[str, pl.DataFrame], zone: Zone | None,
                       problems: list[str]) -> None:
    for out in protocol.outputs:
        df = tables.get(out["table"])
        if df is None:
            continue
        allowed_ids = set((out.get("identifiers") or {}).get("columns", {}))
        for col, values in string_values(df, allowed_ids):
            problems += identifier_findings(f"{out['table']}.{col}", values, zone,
                                             exact_names=protocol.level != "aggregate")
    for name in TEXT_FILES:
        f = folder / name
        if f.exists():
            problems += identifier_findings(name, f.read_text(encoding="utf-8", errors="replace").splitlines(), zone,
                                             exact_names=False)
