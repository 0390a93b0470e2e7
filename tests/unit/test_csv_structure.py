"""CSV structure by counting bytes (the fast path) against the quote-aware pass, on random files.

For a file without quote characters the reader settles its structure by counting delimiters
and line ends instead of parsing every record in Python. These files, well-formed and broken
(short and long records, blank and whitespace-only lines, CRLF and lone CR line ends, a last
record cut short, lines above the header), are read both ways: the outcome (the rows read, or
the rejection's code and message) must be the same, and whenever counting settles a file the
quote-aware pass must agree on its header and number of records.
"""

from __future__ import annotations

import random
from dataclasses import replace

import polars as pl
import pytest

import orchestration.partnership.validation.readers as readers
from orchestration.partnership.contracts.model import load_contract
from orchestration.partnership.settings import PROJECT_ROOT
from orchestration.partnership.validation.readers import DeliveryRejected, read_delivery

pytestmark = pytest.mark.dbt_free

AMBULANCE = load_contract(PROJECT_ROOT / "contracts" / "agencies" / "county_ambulance" / "incidents.odcs.yaml")
VALUES = ["", " ", "a", "Ann", "O'Neil", "Chloé", "RV1 2AB", "2026-11-01", "12", " x ", "INC0001"]


def _file(rng: random.Random, delimiter: str, header_row: int) -> bytes:
    names = list(AMBULANCE.column_names)
    width = len(names)
    end = rng.choice(["\n", "\r\n"])
    lines = [f"title line {i}{delimiter}x" for i in range(header_row - 1)]
    lines.append(delimiter.join(f" {n}" if rng.random() < 0.1 else n for n in names))
    for _ in range(rng.randint(0, 12)):
        fields = [rng.choice(VALUES) for _ in range(width)]
        fault = rng.random()
        if fault < 0.06:
            fields = fields[: rng.randint(1, width - 1)]  # short record
        elif fault < 0.10:
            fields = fields + ["extra"] * rng.randint(1, 2)  # long record
        elif fault < 0.13:
            fields = []  # blank line
        elif fault < 0.15:
            fields = ["   "]  # whitespace only
        elif fault < 0.17:
            fields[rng.randrange(width)] += "\r"  # a lone carriage return inside a field
        lines.append(delimiter.join(fields))
    text = end.join(lines)
    tail = rng.random()
    if tail < 0.7:
        text += end
    elif tail < 0.8 and len(lines) > header_row:  # the last record cut short, no line end
        text = text[: text.rfind(delimiter)]
    return text.encode("utf-8")


def _outcome(path, contract):
    try:
        df = read_delivery(path, contract)
    except DeliveryRejected as rej:
        return ("rejected", rej.code, rej.message)
    return ("read", df)


def _same(a, b) -> bool:
    if a[0] != b[0]:
        return False
    return a[1].equals(b[1]) if a[0] == "read" else a == b


def _against_the_quote_aware_pass(path, data: bytes, contract, monkeypatch) -> tuple[bool, bool]:
    """One file read with counting and without it: the same outcome. Returns whether counting settled
    the file and whether it was rejected."""
    path.write_bytes(data)
    settled = False
    counted = readers._counted_structure(data, contract)
    if counted is not None:
        try:
            height = readers._polars_csv(data, contract).height
        except Exception:
            height = None
        if height == counted[1]:
            # Counting settles this file: the quote-aware pass must find nothing wrong, and the same shape.
            assert readers._csv_structure(data.decode("utf-8"), contract, path.name) == counted, data
            settled = True
    fast = _outcome(path, contract)
    with monkeypatch.context() as m:
        m.setattr(readers, "_counted_structure", lambda _data, _contract: None)
        slow = _outcome(path, contract)
    assert _same(fast, slow), (data, fast, slow)
    return settled, fast[0] == "rejected"


def test_counting_agrees_with_the_quote_aware_pass_on_random_files(tmp_path, monkeypatch):
    rng = random.Random(20261128)
    counted_ok = rejected = 0
    for i in range(200):
        contract = replace(AMBULANCE, format=replace(AMBULANCE.format, delimiter=rng.choice([",", "|", ";", "\t"]),
                                                     header_row=rng.choice([1, 1, 2])))
        data = _file(rng, contract.format.delimiter, contract.format.header_row)
        settled, broken = _against_the_quote_aware_pass(tmp_path / f"incidents_{i}.csv", data, contract, monkeypatch)
        counted_ok += settled
        rejected += broken
    # Both kinds were exercised: files counting settles, and broken files the quote-aware pass names.
    assert counted_ok >= 50 and rejected >= 25, (counted_ok, rejected)


QUOTED = ["a", "", "x,y", "line\nbreak", "crlf\r\nend", 'say ""hi""', '""', "O'Neil", "Chloé"]


def _quoted_file(rng: random.Random, delimiter: str) -> bytes:
    """A file with quoted fields (delimiters, line ends and doubled quotes inside them), some broken:
    short and long records, quotes where the csv module does not read one, a quote never closed."""
    names = list(AMBULANCE.column_names)
    lines = [delimiter.join(names)]
    for _ in range(rng.randint(1, 10)):
        fields = [f'"{v.replace(",", delimiter)}"' if rng.random() < 0.5 else rng.choice(VALUES)
                  for v in (rng.choice(QUOTED) for _ in names)]
        fault = rng.random()
        if fault < 0.06:
            fields = fields[: rng.randint(1, len(names) - 1)]
        elif fault < 0.10:
            fields.append('"extra"')
        elif fault < 0.14:
            fields[rng.randrange(len(names))] = rng.choice(['a"b', '"a"b', ' "a"', '"a" '])  # a quote out of place
        elif fault < 0.16:
            fields[rng.randrange(len(names))] = '"never closed'
        elif fault < 0.18:
            fields = []
        lines.append(delimiter.join(fields))
    end = rng.choice(["\n", "\r\n"])
    return (end.join(lines) + (end if rng.random() < 0.8 else "")).encode("utf-8")


def test_counting_a_file_with_quoted_fields_agrees_with_the_quote_aware_pass(tmp_path, monkeypatch):
    rng = random.Random(20261207)
    counted_ok = rejected = 0
    for i in range(300):
        contract = replace(AMBULANCE, format=replace(AMBULANCE.format, delimiter=rng.choice([",", "|", ";"])))
        data = _quoted_file(rng, contract.format.delimiter)
        settled, broken = _against_the_quote_aware_pass(tmp_path / f"incidents_{i}.csv", data, contract, monkeypatch)
        counted_ok += settled
        rejected += broken
    assert counted_ok >= 100 and rejected >= 40, (counted_ok, rejected)


@pytest.mark.parametrize("bad, expected", [
    (b"1,2,3\n4,5\n7,8,9\n", "row 2 (line 3) has 2 fields; the header has 3"),
    (b"1,2,3\n4,5,6,7\n", "row 2 (line 3) has 4 fields; the header has 3"),
    (b"1,2,3\n4,5", "the file ends part-way through row 2 (line 3: 2 of 3 fields, no line end)"),
])
def test_a_broken_file_without_quotes_is_still_rejected_naming_the_row(tmp_path, bad, expected):
    contract = replace(AMBULANCE, columns=AMBULANCE.columns[:3])
    path = tmp_path / "incidents_20261126.csv"
    path.write_bytes(",".join(contract.column_names).encode() + b"\n" + bad)
    with pytest.raises(DeliveryRejected) as rej:
        read_delivery(path, contract)
    assert expected in rej.value.message


def test_a_well_formed_file_is_settled_by_counting(tmp_path):
    data = (",".join(AMBULANCE.column_names) + "\r\n" + "\r\n".join(",".join(["a"] * 10) for _ in range(5)) + "\r\n").encode()
    assert readers._counted_structure(data, AMBULANCE) == (list(AMBULANCE.column_names), 5)
    quoted = data.replace(b"a,", b'"a,\r\n""b""",', 1)  # a quoted field holding a delimiter, a line end and quotes
    assert readers._counted_structure(quoted, AMBULANCE) == (list(AMBULANCE.column_names), 5)
    assert readers._csv_structure(quoted.decode(), AMBULANCE, "x.csv") == (list(AMBULANCE.column_names), 5)
    assert readers._counted_structure(data.replace(b"a,", b'a"b,', 1), AMBULANCE) is None  # a stray quote: the quote-aware pass
    path = tmp_path / "incidents_20261126.csv"
    path.write_bytes(data)
    assert read_delivery(path, AMBULANCE).height == 5
    assert pl.Series(read_delivery(path, AMBULANCE).columns[1:]).to_list() == list(AMBULANCE.column_names)
