"""The hostile corpus: real delivered files from a generated demo night, broken in every way the
issue lists (and some more). Made by the tests, never committed.

Each case is one file placed in the landing area (or, for a few, a link, a pipe or a folder),
with what its contract says must happen to it: `accepted` (every row valid), `quarantined`
(accepted, the named rows quarantined with exactly the named rules) or `rejected` (with a
reason code, and a reason naming the file). Sources are cleaned first, using the generator's
truth (rows it planted violations in are dropped), so every quarantined row below is one a
case broke on purpose.
"""

from __future__ import annotations

import csv
import io
import os
import random
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import polars as pl

AMB = ("county_ambulance", "incidents", "incidents_20261126.csv")
SCHOOL = ("county_council", "school_attendance", "school_attendance_20260722.csv")
OPTOUT = ("nhs_optout", "opt_outs", "opt_outs_20261101.csv")
HOUSING = ("riverside_council", "housing_adaptations", "housing_adaptations_20261123.xlsx")
AGEWELL = ("riverside_agewell", "falls_class_referrals", "falls_class_referrals_20261101.parquet")
ON_TIME = {  # arrival (file mtime, UTC) on time for each source's due time
    AMB: datetime(2026, 11, 27, 1, 30), SCHOOL: datetime(2026, 7, 23, 1, 30), OPTOUT: datetime(2026, 11, 1, 1, 30),
    HOUSING: datetime(2026, 11, 23, 1, 30), AGEWELL: datetime(2026, 11, 1, 1, 30),
}
FORMULAS = ['=HYPERLINK("http://evil.example/x","click")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "-1+1"]
SQL_SURNAME = "Robert'); DROP TABLE valid.county_ambulance__incidents;--"
SQL_COLUMN = 'conveyed"; DROP TABLE raw.county_ambulance__incidents; --'


@dataclass
class Case:
    id: str
    source: tuple[str, str, str]
    rel: str  # where it lands, relative to landing/
    outcome: str  # accepted | quarantined | rejected
    code: str | None = None  # reason code when rejected
    says: tuple[str, ...] = ()  # fragments the reason must contain
    never_says: tuple[str, ...] = ()  # what the reason must not contain (row values)
    quarantined: dict[int, set[str]] = field(default_factory=dict)  # row -> exactly these rules
    rows: int | None = None  # rows read, when accepted
    at_registration: bool = False  # rejected before it is read (name, place, link)
    data: bytes | None = None
    special: str | None = None  # symlink | symlinked_dir | fifo
    stored: dict[tuple[int, str], str] = field(default_factory=dict)  # (row, column) -> value kept exactly, as data

    @property
    def file_name(self) -> str:
        return Path(self.rel).name


class CsvSource:
    """A delivered CSV as its contract writes it, cleaned of the generator's planted violations."""

    def __init__(self, landing: Path, truth: Path, source: tuple[str, str, str], delimiter: str, encoding: str,
                 bom: bool, limit: int | None = None):
        agency, extract, name = source
        self.delimiter, self.encoding, self.bom = delimiter, encoding, bom
        raw = (landing / agency / extract / name).read_bytes()
        text = raw.decode("utf-8-sig" if bom else encoding)
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        self.header, body = rows[0], rows[1:]
        bad = set(pl.read_parquet(truth / "records.parquet")
                  .filter((pl.col("agency") == agency) & (pl.col("extract") == extract) & (pl.col("file_name") == name)
                          & (pl.col("violations").list.len() > 0))
                  .get_column("row_number").to_list())
        self.rows = [r for i, r in enumerate(body, start=1) if i not in bad][:limit]

    def col(self, name: str) -> int:
        return self.header.index(name)

    def copy_rows(self) -> list[list[str]]:
        return [list(r) for r in self.rows]

    def text(self, header: list[str] | None = None, rows: list[list[str]] | None = None, delimiter: str | None = None,
             eol: str = "\n") -> str:
        buf = io.StringIO(newline="")
        w = csv.writer(buf, delimiter=delimiter or self.delimiter, lineterminator=eol, quoting=csv.QUOTE_MINIMAL)
        w.writerow(self.header if header is None else header)
        w.writerows(self.rows if rows is None else rows)
        return buf.getvalue()

    def encode(self, text: str) -> bytes:
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode(self.encoding)

    def bytes(self, **kw) -> bytes:
        return self.encode(self.text(**kw))

    def with_values(self, changes: dict[tuple[int, str], str]) -> bytes:
        rows = self.copy_rows()
        for (row, column), value in changes.items():
            rows[row - 1][self.col(column)] = value
        return self.bytes(rows=rows)


def _rel(source: tuple[str, str, str], name: str) -> str:
    return f"{source[0]}/{source[1]}/{name}"


def _amb(case_id: str) -> str:
    return _rel(AMB, f"incidents_20261126_{case_id}.csv")


def _xlsx_rows(landing: Path, truth: Path):
    from openpyxl import load_workbook

    agency, extract, name = HOUSING
    wb = load_workbook(landing / agency / extract / name)
    ws = wb.active
    title = ws.cell(1, 1).value
    header = [c.value for c in ws[2]]
    bad = set(pl.read_parquet(truth / "records.parquet")
              .filter((pl.col("file_name") == name) & (pl.col("violations").list.len() > 0)).get_column("row_number").to_list())
    rows = [list(r) for i, r in enumerate(ws.iter_rows(min_row=3, values_only=True), start=1) if i not in bad]
    return title, header, rows[:30]


def _workbook(title, header, rows, edit: Callable | None = None) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "DFG"
    ws.cell(1, 1, title)
    for j, h in enumerate(header, start=1):
        ws.cell(2, j, h)
    for i, r in enumerate(rows, start=3):
        for j, v in enumerate(r, start=1):
            cell = ws.cell(i, j, v)
            if isinstance(v, datetime):
                cell.number_format = "DD/MM/YYYY"
    if edit:
        edit(wb, ws, header)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _zip_bomb(path: Path, expands_to: int) -> None:
    """A workbook-shaped zip whose one sheet inflates to `expands_to` bytes of zeros (about 1000:1)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(expands_to >> 20):
                fh.write(chunk)


def build_cases(landing: Path, truth: Path, outside: Path) -> list[Case]:
    """Every case, with its bytes (or what it is), from the demo night's real files."""
    amb = CsvSource(landing, truth, AMB, ",", "utf-8", False)
    school = CsvSource(landing, truth, SCHOOL, ",", "utf-8", True, limit=60)
    optout = CsvSource(landing, truth, OPTOUT, ",", "utf-8", False)
    n = len(amb.rows)
    first_id = amb.rows[0][amb.col("incident_id")]
    C: list[Case] = []

    def add(case_id, outcome, data=None, *, rel=None, source=AMB, **kw):
        C.append(Case(case_id, source, rel or _amb(case_id), outcome, data=data, **kw))

    text = amb.text()
    lines = text.split("\n")
    # --- shape of the file
    add("empty", "rejected", b"", code="empty", says=("empty",))
    add("whitespace_only", "rejected", b"\n  \n\n", code="empty", says=("empty",))
    add("header_only", "accepted", amb.bytes(rows=[]), rows=0)
    C.append(Case("header_only_below_row_count", OPTOUT, _rel(OPTOUT, "opt_outs_20261101_header_only.csv"), "rejected",
                  data=optout.bytes(rows=[]), code="row_count", says=("row_count", "0 rows", "1 to 5000000")))
    add("no_header", "rejected", amb.encode("\n".join(lines[1:])), code="header", says=("none of the contract's",),
        never_says=(first_id, amb.rows[0][amb.col("surname")]))
    add("duplicated_header_row", "quarantined", amb.bytes(rows=[amb.header] + amb.copy_rows()), rows=n + 1,
        quarantined={1: {"incident_datetime:date_parse", "nhs_number:pattern", "date_of_birth:date_parse", "sex:allowed_values",
                         "postcode:pattern", "chief_complaint:allowed_values", "conveyed:allowed_values"}})
    add("extra_column", "rejected", amb.bytes(header=amb.header + ["ward_code"], rows=[r + ["E05900001"] for r in amb.rows]),
        code="extra_columns", says=("ward_code",))
    drop = amb.col("conveyed")
    add("missing_required_column", "rejected", amb.bytes(header=[h for h in amb.header if h != "conveyed"],
                                                         rows=[r[:drop] + r[drop + 1:] for r in amb.rows]),
        code="missing_columns", says=("conveyed",))
    drop_pc = amb.col("postcode")
    add("missing_optional_column", "rejected", amb.bytes(header=[h for h in amb.header if h != "postcode"],
                                                         rows=[r[:drop_pc] + r[drop_pc + 1:] for r in amb.rows]),
        code="missing_columns", says=("postcode",))
    add("renamed_column", "rejected", amb.bytes(header=["gender" if h == "sex" else h for h in amb.header]),
        code="missing_columns", says=("sex", "gender", "renamed"))
    add("reordered_columns", "accepted", amb.bytes(header=amb.header[::-1], rows=[r[::-1] for r in amb.rows]), rows=n)
    add("wrong_delimiter", "rejected", amb.bytes(delimiter=";"), code="delimiter", says=("';'-delimited", "','"))
    mixed = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(lines[:-1]))
    add("mixed_line_endings", "accepted", amb.encode(mixed), rows=n)
    add("classic_mac_line_endings", "accepted", amb.encode(text.replace("\n", "\r")), rows=n)
    bad = lines[:4] + [lines[4].replace(",", ',"', 4).replace(',"', ",", 3)] + lines[5:]
    add("unterminated_quote", "rejected", amb.encode("\n".join(bad)), code="unparseable", says=("line 5", "never closed"))
    rows = amb.copy_rows()
    rows[1][amb.col("surname")] = "Smith\nJones, of \"Riverside\""
    rows[4][amb.col("sex")] = "Q"
    add("embedded_newlines_in_quotes", "quarantined", amb.bytes(rows=rows), rows=n, quarantined={5: {"sex:allowed_values"}},
        stored={(2, "surname"): "Smith\nJones, of \"Riverside\""})
    add("one_megabyte_field", "quarantined", amb.with_values({(2, "surname"): "A" * (1 << 20)}), rows=n,
        quarantined={2: {"surname:length"}})
    many = [[f"{v}-{k}" if j == amb.col("incident_id") else v for j, v in enumerate(r)] for k in range(10) for r in amb.rows]
    add("ten_times_the_rows", "accepted", amb.bytes(rows=many), rows=10 * n)
    add("truncated_mid_row", "rejected", amb.encode(text.rstrip("\n")[:-25]), code="truncated", says=(f"row {n}", "cut short"))
    rows = amb.copy_rows()
    rows[2] = rows[2] + ["spare"]
    add("ragged_row", "rejected", amb.bytes(rows=rows), code="unparseable", says=("row 3 (line 4)", "11 fields", "header has 10"))
    # --- encoding
    add("utf16", "rejected", text.encode("utf-16"), code="encoding", says=("UTF-16",))
    rows = amb.copy_rows()
    rows[1][amb.col("forename")] = "José"
    add("latin1_declared_utf8", "rejected", amb.text(rows=rows).encode("cp1252"), code="encoding", says=("line 3", "utf-8"))
    add("unexpected_bom", "rejected", b"\xef\xbb\xbf" + text.encode(), code="encoding", says=("byte-order mark",))
    C.append(Case("missing_bom", SCHOOL, _rel(SCHOOL, "school_attendance_20260722_nobom.csv"), "rejected",
                  data=school.text().encode("utf-8"), code="encoding", says=("no UTF-8 byte-order mark",)))
    add("nul_bytes", "rejected", text.encode().replace(b"\n", b"\n\x00", 2), code="encoding", says=("NUL",))
    add("binary_garbage", "rejected", random.Random(9).randbytes(8192), code="encoding", says=("incidents_20261126_binary_garbage.csv",))
    # --- workbooks
    title, xheader, xrows = _xlsx_rows(landing, truth)
    nx = len(xrows)

    def xl(case_id, outcome, data, **kw):
        C.append(Case(case_id, HOUSING, _rel(HOUSING, f"housing_adaptations_20261123_{case_id}.xlsx"), outcome, data=data, **kw))

    xl("xlsx_several_sheets", "rejected", _workbook(title, xheader, xrows, lambda wb, ws, h: wb.create_sheet("Notes")),
       code="sheet", says=("2 sheets",))
    xl("xlsx_merged_header_cells", "rejected", _workbook(title, xheader, xrows, lambda wb, ws, h: ws.merge_cells("C2:D2")),
       code="header", says=("blank column name", "merged"))

    def formula(wb, ws, h):
        ws.cell(5, h.index("grant_amount") + 1, "=1000+250")
    xl("xlsx_formula_without_value", "rejected", _workbook(title, xheader, xrows, formula), code="unreadable",
       says=("J5", "formula"))

    def text_formula(wb, ws, h):
        c = ws.cell(3, h.index("forename") + 1)
        c.value, c.data_type = FORMULAS[0], "s"  # text that looks like a formula: data
    xl("xlsx_formula_looking_text", "accepted", _workbook(title, xheader, xrows, text_formula), rows=nx,
       stored={(1, "forename"): FORMULAS[0]})

    def serial(wb, ws, h):
        c = ws.cell(6, h.index("referral_date") + 1, 45000)
        c.number_format = "General"
    xl("xlsx_dates_as_serial_numbers", "quarantined", _workbook(title, xheader, xrows, serial), rows=nx,
       quarantined={4: {"referral_date:date_parse"}})
    plain = _workbook(title, xheader, xrows)
    from msoffcrypto.format.ooxml import OOXMLFile

    enc = io.BytesIO()
    OOXMLFile(io.BytesIO(plain)).encrypt("Riverside1", enc)
    xl("xlsx_password_protected", "rejected", enc.getvalue(), code="unreadable", says=("password-protected",))
    xl("xlsx_corrupt_zip", "rejected", plain[: len(plain) // 2], code="unreadable", says=("not a valid .xlsx",))
    xl("xlsx_zip_bomb", "rejected", None, code="unreadable", says=("expands to", "MiB limit"), special="zip_bomb")
    C.append(Case("parquet_not_parquet", AGEWELL, _rel(AGEWELL, "falls_class_referrals_20261101_fake.parquet"), "rejected",
                  data=b"PAR1 this is not parquet at all", code="unreadable", says=("not a readable Parquet file",)))
    # --- names and places
    clean = amb.bytes()
    add("name_with_dotdot_backslash", "rejected", clean, rel=_rel(AMB, "incidents_..\\..\\..\\etc_20261126.csv"),
        code="file_name", says=("backslash",), at_registration=True)
    add("name_with_newline", "rejected", clean, rel=_rel(AMB, "incidents_20261126\nERROR forged log line.csv"),
        code="file_name", says=("control characters", "\\n"), never_says=("\n",), at_registration=True)
    add("name_with_spaces", "accepted", amb.with_values({(1, "surname"): "Spaced"}), rel=_rel(AMB, "incidents_20261126 (copy 2).csv"), rows=n)
    add("name_with_unicode", "accepted", amb.with_values({(1, "surname"): "Ünicode"}), rel=_rel(AMB, "incidents_20261126_übermittlung.csv"), rows=n)
    add("name_with_fullwidth_date", "rejected", amb.with_values({(1, "surname"): "Fullwidth"}), rel=_rel(AMB, "incidents_２０２６１１２６.csv"),
        code="file_name", says=("carries no date",))
    add("name_not_matching_pattern", "rejected", clean, rel=_rel(AMB, "INCIDENTS 20261126.csv"), code="file_name",
        says=("incidents_*.csv",), at_registration=True)
    add("symlink_to_outside", "rejected", None, rel=_rel(AMB, "incidents_20261126_link.csv"), code="symlink",
        says=("symbolic link",), at_registration=True, special="symlink")
    add("symlinked_folder", "rejected", None, rel="county_police/evil", code="symlink", says=("symbolic link",),
        at_registration=True, special="symlinked_dir")
    add("fifo_in_landing", "rejected", None, rel=_rel(AMB, "incidents_20261126_pipe.csv"), code="not_a_file",
        says=("not a regular file",), at_registration=True, special="fifo")
    add("unknown_agency", "rejected", clean, rel="riverside_hospice/admissions/admissions_20261126.csv", code="unknown_extract",
        says=("riverside_hospice",), at_registration=True)
    add("unknown_extract", "rejected", clean, rel="county_ambulance/handovers/handovers_20261126.csv", code="unknown_extract",
        says=("handovers",), at_registration=True)
    add("wrong_location", "rejected", clean, rel="county_ambulance/incidents_20261126.csv", code="location",
        says=("landing/<agency>/<extract>/<file>",), at_registration=True)
    # --- values
    add("formula_values", "accepted", amb.with_values({(1, "forename"): FORMULAS[0], (1, "surname"): FORMULAS[1],
                                                        (2, "forename"): FORMULAS[2], (3, "surname"): FORMULAS[3]}), rows=n,
        stored={(1, "forename"): FORMULAS[0], (1, "surname"): FORMULAS[1], (2, "forename"): FORMULAS[2], (3, "surname"): FORMULAS[3]})
    add("sql_in_values", "quarantined", amb.with_values({(1, "surname"): SQL_SURNAME, (2, "incident_id"): "1;DROP TABLE ops.deliveries"}),
        rows=n, quarantined={2: {"incident_id:pattern"}}, stored={(1, "surname"): SQL_SURNAME})
    add("sql_in_column_name", "rejected", amb.bytes(header=amb.header + [SQL_COLUMN], rows=[r + ["x"] for r in amb.rows]),
        code="extra_columns", says=("DROP TABLE",))
    add("unicode_lookalikes_in_identifiers", "quarantined", amb.with_values({
        (1, "nhs_number"): "４８７２１９４６６７", (2, "sex"): "М", (3, "incident_id"): "INC3000\u0421001",
        (4, "postcode"): "RV1 4\u0410A"}), rows=n,
        quarantined={1: {"nhs_number:pattern"}, 2: {"sex:allowed_values"}, 3: {"incident_id:pattern"}, 4: {"postcode:pattern"}})
    add("dates_far_future_and_before_1900", "quarantined", amb.with_values({
        (1, "incident_datetime"): "2999-01-01T00:00:00", (2, "date_of_birth"): "1899-12-31",
        (3, "date_of_birth"): "9999-12-31", (4, "incident_datetime"): "1970-01-01T00:00:00"}), rows=n,
        quarantined={1: {"incident_datetime:range"}, 2: {"date_of_birth:range"}, 3: {"date_of_birth:range"},
                     4: {"incident_datetime:range"}})
    C.append(Case("negative_counts", SCHOOL, _rel(SCHOOL, "school_attendance_20260722_negative.csv"), "quarantined",
                  data=school.with_values({(1, "possible_sessions"): "-5", (2, "attended_sessions"): "-1"}), rows=len(school.rows),
                  quarantined={1: {"possible_sessions:range", "attended_not_above_possible:cross_field"},
                               2: {"attended_sessions:range"}}))
    # An address line is a name-like free text: markup and formulas are kept as data, control
    # characters and overlong lines quarantine the row.
    markup = '<b onmouseover="alert(1)">12 Oak Rd</b>'
    C.append(Case("hostile_address_lines", SCHOOL, _rel(SCHOOL, "school_attendance_20260722_addresses.csv"), "quarantined",
                  data=school.with_values({(1, "address_line"): markup, (2, "address_line"): FORMULAS[0],
                                           (3, "address_line"): "12 Oak Road\x1b[2J", (4, "address_line"): "12 Oak\tRoad",
                                           (5, "address_line"): "9" * 201}), rows=len(school.rows),
                  quarantined={3: {"address_line:pattern"}, 4: {"address_line:pattern"}, 5: {"address_line:length"}},
                  stored={(1, "address_line"): markup, (2, "address_line"): FORMULAS[0]}))
    # --- repeats
    original = (landing / "county_ambulance/incidents/incidents_20261125.csv").read_bytes()
    add("same_delivery_twice", "rejected", original, rel=_rel(AMB, "incidents_20261125_resent.csv"), code="duplicate",
        says=("identical to delivery",))
    half = n // 2
    add("two_in_one_night_first", "accepted", amb.bytes(rows=amb.rows[:half]), rel=_rel(AMB, "incidents_20261126_am.csv"), rows=half)
    add("two_in_one_night_second", "accepted", amb.bytes(rows=amb.rows[half:]), rel=_rel(AMB, "incidents_20261126_pm.csv"), rows=n - half)
    return C


def place(case: Case, landing: Path, outside: Path) -> Path:
    """Put one case in the landing area, with an on-time arrival."""
    path = landing / case.rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if case.special == "symlink":
        secret = outside / "secret.csv"
        secret.write_text("incident_id\nOUTSIDE-SECRET\n")
        os.symlink(secret, path)
        return path
    if case.special == "symlinked_dir":
        target = outside / "elsewhere"
        (target / "incidents").mkdir(parents=True, exist_ok=True)
        (target / "incidents" / "incidents_20261126.csv").write_text("OUTSIDE-SECRET\n")
        os.symlink(target, path)
        return path
    if case.special == "fifo":
        os.mkfifo(path)
        return path
    if case.special == "zip_bomb":
        _zip_bomb(path, 600 << 20)
    else:
        path.write_bytes(case.data)
    when = ON_TIME[case.source].replace(tzinfo=timezone.utc).timestamp()
    os.utime(path, (when, when))
    return path
