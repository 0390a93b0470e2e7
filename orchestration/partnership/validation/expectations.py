"""What a row rule expects, and an example of a failing value a data owner may be shown: the words
of every row-rule message (`partnership check`, the delivery reports).

An identifying value is never shown: its example keeps the shape of the mistake without it. Each
letter becomes A or a, each digit 9, other characters stay; beside it a note says what the shape
alone cannot: that a code column holds a word, or that a date in the contract's form does not exist
(`1950-02-31` shows as `9999-99-99`, noted "in the form yyyy-MM-dd, but no such day in that month").
The note names kinds and counts of characters, never a character of the value.
"""

from __future__ import annotations

import calendar
import re

from orchestration.partnership.contracts.model import Column, Contract

IDENTIFYING = ("direct_identifier", "quasi_identifier", "special_category")
MAX_SHOWN = 40
MAX_CODES = 20
_OPS = {"<": "before", "<=": "on or before", ">": "after", ">=": "on or after", "=": "equal to", "!=": "different from"}
_TYPES = {"integer": "a whole number", "number": "a number", "boolean": "true or false (or y/n, yes/no, 1/0)"}
# The parts of a JDK date format, with the range each must fall in.
_PARTS = (("yyyy", "year", 1, 9999), ("MM", "month", 1, 12), ("dd", "day", 1, 31), ("HH", "hour", 0, 23),
          ("mm", "minute", 0, 59), ("ss", "second", 0, 59))


def expected_form(contract: Contract, rule: str) -> str | None:
    """What the contract expects of the value(s) a row rule (`<column>:<kind>`, `<rule>:cross_field`,
    `<keys>:unique`) judges, in the words a data owner reads."""
    target, _, kind = rule.rpartition(":")
    if kind == "cross_field":
        r = next((r for r in contract.cross_field_rules if r.name == target), None)
        if r is None:
            return None
        text = f"{r.left} {_OPS.get(r.op, r.op)} {r.right}"
        return f"{text} ({r.description.strip()})" if r.description else text
    if "+" in target:
        return f"no two rows with the same {', '.join(target.split('+'))}"
    if target not in contract.column_names:
        return None
    col = contract.column(target)
    match kind:
        case "required":
            return "a value in every row (the column is required)"
        case "date_parse":
            what = "date and time" if col.logical_type == "timestamp" else "date"
            return f"a real {what} in the form {col.date_format}"
        case "type":
            return _TYPES.get(col.logical_type, col.logical_type)
        case "unique":
            return "a value no other row of the file has"
        case "pattern":
            return f"text matching the pattern {col.pattern}"
        case "length":
            lo, hi = col.min_length, col.max_length
            return (f"{lo} to {hi} characters" if lo is not None and hi is not None
                    else f"at least {lo} characters" if lo is not None else f"at most {hi} characters")
        case "allowed_values":
            codes = list(col.allowed_values or ())
            shown = ", ".join(codes[:MAX_CODES]) + (f", … ({len(codes)} codes)" if len(codes) > MAX_CODES else "")
            return f"one of the codes: {shown}"
        case "range":
            parts = []
            if col.minimum is not None:
                parts.append(f"at least {col.minimum}")
            if col.maximum is not None:
                parts.append(f"at most {col.maximum}")
            if col.not_in_future:
                parts.append("not after the day the file arrived")
            return ", ".join(parts)
        case "nhs_number_check_digit":
            return "a 10-digit NHS number whose last digit is its modulus 11 check digit"
        case "upn_check_letter":
            return "a 13-character UPN whose first letter is its check letter"
    return None


def shape(value: str) -> str:
    """Each letter A or a, each digit 9; other characters (separators, spaces) as they are."""
    return re.sub(r"[a-z]", "a", re.sub(r"[A-Z]", "A", re.sub(r"[0-9]", "9", value)))


def _counts(value: str) -> str:
    letters = sum(ch.isalpha() for ch in value)
    digits = sum(ch.isdigit() for ch in value)
    other = len(value) - letters - digits
    parts = [f"{n} {w}{'' if n == 1 else 's'}" for n, w in ((letters, "letter"), (digits, "digit"), (other, "other character"))
             if n]
    return ", ".join(parts) or "empty"


def _date_note(value: str, fmt: str | None) -> str:
    """Whether a date that does not parse has the contract's form, and if so which part is impossible."""
    if not fmt:
        return "not a date"
    template = fmt.replace("'T'", "T")
    form = template
    for token, *_ in _PARTS:
        form = form.replace(token, "9" * len(token))
    if shape(value) != form:
        return f"not in the form {fmt}"
    found = {}
    for token, name, lo, hi in _PARTS:
        at = template.find(token)
        if at >= 0:
            found[name] = (int(value[at:at + len(token)]), lo, hi)
    for name, (v, lo, hi) in found.items():
        if not lo <= v <= hi:
            return f"in the form {fmt}, but the {name} is out of range"
    if {"year", "month", "day"} <= found.keys():
        y, m, d = found["year"][0], found["month"][0], found["day"][0]
        if d > calendar.monthrange(y, m)[1]:
            return f"in the form {fmt}, but no such day in that month"
    return f"in the form {fmt}, but not a real date"


def masked_example(value: str | None, col: Column, kind: str | None = None) -> tuple[str | None, str | None]:
    """The value as a data owner may see it in a message about the rule `kind` of its column, and a
    note: as it is (cut to 40 characters) and no note, unless the column identifies people; then its
    shape (only A, a, 9 and the value's other characters) and a note of what is wrong with it."""
    if value is None:
        return None, None
    if col.classification not in IDENTIFYING:
        return (value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN - 1] + "…"), None
    if kind == "date_parse":
        note = _date_note(value, col.date_format)
    elif kind == "allowed_values":
        longest = max((len(c) for c in col.allowed_values or ()), default=0)
        word = value.isalpha() and len(value) > longest
        note = (f"a word of {len(value)} letters, not a code" if word else _counts(value)) + \
            f"; the codes have {'at most ' if longest > 1 else ''}{longest} character{'s' if longest != 1 else ''}"
    else:
        note = _counts(value)
    return shape(value)[:MAX_SHOWN], note


def example_text(example: dict) -> str:
    """`row n: column=value (note), ...`, as every message prints an example."""
    notes = example.get("notes") or {}
    parts = [f"{c}={'(blank)' if v is None else v}" + (f" ({notes[c]})" if notes.get(c) else "")
             for c, v in example["values"].items()]
    return f"row {example['row']}: " + ", ".join(parts)
