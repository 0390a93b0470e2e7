"""The hostile corpus, second part: files no reader may crash on, judged by the engine directly.

Every Arrow/Parquet type a column can have, every workbook oddity, every text encoding, each
made from a generated demo's real delivery (cleaned of the generator's planted violations)
with the outcome its contract says it must get. They need no warehouse: the night's ingest
and `partnership check` both call the same engine on the file (test_file_corpus.py checks both).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tests.hostile.corpus import AGEWELL, AMB, HOUSING, ON_TIME, SCHOOL, CsvSource, _workbook, _xlsx_rows

POLICE = ("county_police", "incidents", "incidents_20261126.csv")
ON_TIME_POLICE = datetime(2026, 11, 27, 1, 30)


@dataclass
class FileCase:
    id: str
    source: tuple[str, str, str]
    data: bytes
    outcome: str  # accepted | quarantined | rejected
    code: str | None = None
    says: tuple[str, ...] = ()
    never_says: tuple[str, ...] = ()
    quarantined: dict[int, set[str]] = field(default_factory=dict)
    rows: int | None = None
    stored: dict[tuple[int, str], str] = field(default_factory=dict)  # (row, column) -> the text the engine reads

    @property
    def contract_id(self) -> str:
        return f"{self.source[0]}__{self.source[1]}"

    @property
    def file_name(self) -> str:
        stem, dot, ext = self.source[2].rpartition(".")
        return f"{stem}_{self.id}.{ext}"

    @property
    def arrived_at(self) -> datetime:
        return ON_TIME_POLICE if self.source == POLICE else ON_TIME[self.source]


def _agewell(landing: Path, truth: Path) -> pa.Table:
    agency, extract, name = AGEWELL
    table = pq.read_table(landing / agency / extract / name)
    bad = set(pl.read_parquet(truth / "records.parquet")
              .filter((pl.col("file_name") == name) & (pl.col("violations").list.len() > 0)).get_column("row_number").to_list())
    keep = [i for i in range(table.num_rows) if i + 1 not in bad]
    return table.take(keep).slice(0, 40)


def _with(table: pa.Table, column: str, values, type_: pa.DataType | None = None) -> bytes:
    """The table with one column replaced (same name, same place), written as Parquet."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=type_)
    i = table.schema.get_field_index(column)
    return _parquet(table.set_column(i, column, arr))


def _parquet(table: pa.Table, **kw) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kw)
    return buf.getvalue()


def _patch_cell(xlsx: bytes, coordinate: str, cell_xml: str) -> bytes:
    """The workbook with one cell of its first sheet replaced by raw XML (what a spreadsheet program writes,
    and openpyxl cannot: a formula's cached result, an error value)."""
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                text = data.decode("utf-8")
                text, n = re.subn(rf'<c r="{coordinate}"[^>]*?(/>|>.*?</c>)', cell_xml, text, count=1)
                assert n == 1, coordinate
                data = text.encode("utf-8")
            dst.writestr(info, data)
    return out.getvalue()


def build_file_cases(landing: Path, truth: Path) -> list[FileCase]:
    C: list[FileCase] = []
    t = _agewell(landing, truth)
    n = t.num_rows
    col = {name: t.column(name).to_pylist() for name in t.column_names}

    def pq_case(case_id, outcome, data, **kw):
        C.append(FileCase(case_id, AGEWELL, data, outcome, rows=kw.pop("rows", n if outcome != "rejected" else None), **kw))

    def refused(case_id, data, *says):
        pq_case(case_id, "rejected", data, code="column_type", says=says)

    attended = col["classes_attended"]
    # --- Parquet: columns of several values per row, or of no text form: refused, naming the column
    refused("pq_list_column", _with(t, "classes_attended", [[v] for v in attended], pa.list_(pa.int64())), "classes_attended", "a list")
    refused("pq_large_list_column", _with(t, "classes_attended", [[v, v] for v in attended], pa.large_list(pa.int64())),
            "classes_attended", "a list")
    refused("pq_fixed_size_list_column", _with(t, "classes_attended", [[v, 0] for v in attended], pa.list_(pa.int64(), 2)),
            "classes_attended", "a list")
    refused("pq_struct_column", _with(t, "postcode", [{"outward": p.split()[0] if p else None, "inward": None} for p in col["postcode"]]),
            "postcode", "a struct")
    refused("pq_map_column", _with(t, "referral_source", [[(v, "x")] for v in col["referral_source"]], pa.map_(pa.string(), pa.string())),
            "referral_source", "a map")
    refused("pq_list_of_structs_column", _with(t, "forename", [[{"given": v}] for v in col["forename"]]), "forename", "a list")
    refused("pq_time_column", _with(t, "first_class_date", [time(10, 30)] * n, pa.time64("us")), "first_class_date", "times of day")
    refused("pq_time32_for_text", _with(t, "referral_source", [time(9, 0)] * n, pa.time32("s")), "referral_source", "times of day")
    refused("pq_duration_column", _with(t, "classes_attended", [timedelta(days=v or 0) for v in attended], pa.duration("s")),
            "classes_attended", "durations")
    refused("pq_date_for_integer", _with(t, "classes_attended", [date(2026, 1, 1)] * n, pa.date32()), "classes_attended", "dates")
    refused("pq_boolean_for_date", _with(t, "referral_date", [True] * n, pa.bool_()), "referral_date", "true/false")
    surnames = [v.encode() if v else None for v in col["surname"]]
    surnames[2] = b"\xff\xfeM\x00"  # UTF-16 bytes in a binary column
    refused("pq_binary_not_utf8", _with(t, "surname", surnames, pa.binary()), "surname", "not UTF-8", "row 3")
    # --- Parquet: other physical types of the same values: read as the text they stand for
    pq_case("pq_binary_utf8", "accepted", _with(t, "surname", [v.encode() if v else None for v in col["surname"]], pa.large_binary()),
            stored={(1, "surname"): col["surname"][0]})
    pq_case("pq_string_view", "accepted", _with(t, "referral_id", pa.array(col["referral_id"], pa.string()).cast(pa.string_view())))
    pq_case("pq_dictionary_strings", "accepted",
            _with(t, "referral_source", pa.array(col["referral_source"]).dictionary_encode()))
    pq_case("pq_decimal_whole", "accepted", _with(t, "classes_attended", [None if v is None else Decimal(v).quantize(Decimal("0.01"))
                                                                        for v in attended], pa.decimal128(10, 2)),
            stored={(1, "classes_attended"): str(attended[0])})
    fractions = [None if v is None else Decimal(v) for v in attended]
    fractions[1] = Decimal("3.5")
    pq_case("pq_decimal_fraction_for_integer", "quarantined", _with(t, "classes_attended", fractions, pa.decimal128(10, 1)),
            quarantined={2: {"classes_attended:type"}})
    pq_case("pq_float_whole", "accepted", _with(t, "classes_attended", [None if v is None else float(v) for v in attended], pa.float64()),
            stored={(1, "classes_attended"): str(attended[0])})
    nan = [None if v is None else float(v) for v in attended]
    nan[3] = float("nan")
    pq_case("pq_float_nan_for_integer", "quarantined", _with(t, "classes_attended", nan, pa.float32()),
            quarantined={4: {"classes_attended:type"}})
    pq_case("pq_float16", "accepted", _with(t, "classes_attended", pa.array([None if v is None else float(v) for v in attended],
                                                                             pa.float32()).cast(pa.float16())))
    pq_case("pq_small_unsigned_integers", "accepted", _with(t, "classes_attended", attended, pa.uint8()))
    pq_case("pq_integers_as_text", "accepted", _with(t, "classes_attended", [None if v is None else str(v) for v in attended]))
    pq_case("pq_timestamp_at_midnight_for_date", "accepted",
            _with(t, "referral_date", [datetime.combine(d, time()) for d in col["referral_date"]], pa.timestamp("ms")),
            stored={(1, "referral_date"): col["referral_date"][0].isoformat()})
    with_time = [datetime.combine(d, time()) for d in col["date_of_birth"]]
    with_time[4] = with_time[4].replace(hour=10, minute=30)
    pq_case("pq_timestamp_with_time_for_date", "quarantined", _with(t, "date_of_birth", with_time, pa.timestamp("us")),
            quarantined={5: {"date_of_birth:date_parse"}})
    pq_case("pq_timestamp_with_zone", "accepted",
            _with(t, "referral_date", pc.assume_timezone(pa.array([datetime.combine(d, time()) for d in col["referral_date"]],
                                                                pa.timestamp("us")), "Europe/London")),
            stored={(1, "referral_date"): col["referral_date"][0].isoformat()})
    pq_case("pq_date64", "accepted", _with(t, "referral_date", col["referral_date"], pa.date64()))
    pq_case("pq_dates_as_text", "accepted", _with(t, "referral_date", [d.isoformat() for d in col["referral_date"]]))
    slashed = [d.isoformat() for d in col["referral_date"]]
    slashed[0] = col["referral_date"][0].strftime("%d/%m/%Y")
    pq_case("pq_dates_as_text_in_another_format", "quarantined", _with(t, "referral_date", slashed),
            quarantined={1: {"referral_date:date_parse"}})
    pq_case("pq_booleans_as_integers", "accepted", _with(t, "consent_to_share", [None if v is None else int(v) for v in col["consent_to_share"]],
                                                         pa.int8()))
    pq_case("pq_all_null_column", "accepted", _with(t, "postcode", pa.nulls(n)))
    pq_case("pq_large_string_and_dictionary_compressed", "accepted", _parquet(t, compression="zstd", use_dictionary=True))
    pq_case("pq_extra_column", "rejected", _parquet(t.append_column("nhs_number", pa.array(["9434765919"] * n))),
            code="extra_columns", says=("nhs_number",))
    pq_case("pq_extra_nested_column", "rejected", _parquet(t.append_column("notes", pa.array([[1]] * n))),
            code="extra_columns", says=("notes",))
    pq_case("pq_duplicated_column_names", "rejected", _parquet(t.append_column("referral_source", t.column("referral_source"))),
            code="header", says=("duplicated column names", "referral_source"))
    pq_case("pq_missing_required_column", "rejected", _parquet(t.drop_columns(["referral_source"])),
            code="missing_columns", says=("referral_source",))
    whole = _parquet(t)
    pq_case("pq_truncated_footer", "rejected", whole[:-20], code="unreadable", says=("not a readable Parquet file",))
    pq_case("pq_zero_bytes", "rejected", b"", code="unreadable", says=("not a readable Parquet file",))
    pq_case("pq_csv_named_parquet", "rejected", b"referral_id,forename\nAW1,Ann\n", code="unreadable",
            says=("not a readable Parquet file",))

    # --- workbooks
    title, header, rows = _xlsx_rows(landing, truth)
    nx = len(rows)

    def xl(case_id, outcome, data, **kw):
        C.append(FileCase(case_id, HOUSING, data, outcome, rows=kw.pop("rows", nx if outcome != "rejected" else None), **kw))

    def cell(name: str, sheet_row: int) -> str:
        from openpyxl.utils import get_column_letter

        return f"{get_column_letter(header.index(name) + 1)}{sheet_row}"

    grant = header.index("grant_amount") + 1
    xl("xlsx_merged_data_cells", "rejected", _workbook(title, header, rows, lambda wb, ws, h: ws.merge_cells(f"{cell('adaptation_type', 5)}:"
                                                                                                            f"{cell('adaptation_type', 7)}")),
       code="merged_cells", says=(f"{cell('adaptation_type', 5)}:{cell('adaptation_type', 7)}", "merged"))
    xl("xlsx_merged_title_above_header", "accepted", _workbook(title, header, rows, lambda wb, ws, h: ws.merge_cells("A1:E1")))
    xl("xlsx_hidden_second_sheet", "rejected",
       _workbook(title, header, rows, lambda wb, ws, h: setattr(wb.create_sheet("Lookups"), "sheet_state", "hidden")),
       code="sheet", says=("2 sheets", "hidden"))
    xl("xlsx_very_hidden_second_sheet", "rejected",
       _workbook(title, header, rows, lambda wb, ws, h: setattr(wb.create_sheet("x"), "sheet_state", "veryHidden")),
       code="sheet", says=("2 sheets", "hidden"))

    def hide_rows(wb, ws, h):
        for r in (4, 5):
            ws.row_dimensions[r].hidden = True
    xl("xlsx_hidden_rows_are_data", "accepted", _workbook(title, header, rows, hide_rows))

    def outside(wb, ws, h):
        ws.cell(9, len(h) + 2, "see notes")
    xl("xlsx_value_outside_the_header", "rejected", _workbook(title, header, rows, outside), code="extra_columns",
       says=("outside the header", "row 9", "data row 7"), never_says=("see notes",))

    def outside_blank(wb, ws, h):
        ws.cell(9, len(h) + 2, "   ")
    xl("xlsx_blank_cell_outside_the_header", "accepted", _workbook(title, header, rows, outside_blank))
    xl("xlsx_chart_instead_of_table", "rejected", _chart_only(), code="sheet", says=("is a chart",))
    formula = _workbook(title, header, rows, lambda wb, ws, h: ws.cell(5, grant, "=1000+250"))
    xl("xlsx_formula_with_calculated_value", "accepted",
       _patch_cell(formula, cell("grant_amount", 5), f'<c r="{cell("grant_amount", 5)}"><f>1000+250</f><v>1250</v></c>'),
       stored={(3, "grant_amount"): "1250"})
    xl("xlsx_formula_ending_in_an_error", "rejected",
       _patch_cell(formula, cell("grant_amount", 5), f'<c r="{cell("grant_amount", 5)}" t="e"><f>1/0</f><v>#DIV/0!</v></c>'),
       code="formula_error", says=(cell("grant_amount", 5), "formula error"))
    xl("xlsx_error_value_without_formula", "rejected",
       _patch_cell(formula, cell("grant_amount", 5), f'<c r="{cell("grant_amount", 5)}" t="e"><v>#N/A</v></c>'),
       code="formula_error", says=(cell("grant_amount", 5),))

    def datetime_in_date(wb, ws, h):
        c = ws.cell(4, h.index("referral_date") + 1, datetime(2025, 3, 4, 14, 5))
        c.number_format = "DD/MM/YYYY HH:MM"
    xl("xlsx_date_with_a_time", "quarantined", _workbook(title, header, rows, datetime_in_date),
       quarantined={2: {"referral_date:date_parse"}})

    def text_date(wb, ws, h):
        ws.cell(4, h.index("referral_date") + 1, rows[1][h.index("referral_date")].strftime("%Y-%m-%d"))
    xl("xlsx_date_typed_as_text", "accepted", _workbook(title, header, rows, text_date))

    def number_as_text(wb, ws, h):
        ws.cell(4, grant, "1500")
    xl("xlsx_number_typed_as_text", "accepted", _workbook(title, header, rows, number_as_text), stored={(2, "grant_amount"): "1500"})

    def boolean_in_text(wb, ws, h):
        ws.cell(4, h.index("adaptation_type") + 1, True)
    xl("xlsx_boolean_in_a_category_column", "quarantined", _workbook(title, header, rows, boolean_in_text),
       quarantined={2: {"adaptation_type:allowed_values"}})

    def epoch_1904(wb, ws, h):
        from openpyxl.utils.datetime import CALENDAR_MAC_1904

        wb.epoch = CALENDAR_MAC_1904
    xl("xlsx_1904_date_system", "accepted", _workbook(title, header, rows, epoch_1904))

    def header_lower(wb, ws, h):
        ws.delete_rows(1)
    xl("xlsx_header_on_the_wrong_row", "rejected", _workbook(title, header, rows, header_lower), code="header",
       says=("on row 2",))
    xl("xlsx_header_only", "rejected", _workbook(title, header, []), code="row_count", says=("row_count",))

    # --- text encodings
    amb = CsvSource(landing, truth, AMB, ",", "utf-8", False, limit=40)
    police = CsvSource(landing, truth, POLICE, ",", "cp1252", False, limit=40)
    school = CsvSource(landing, truth, SCHOOL, ",", "utf-8", True, limit=40)
    na = len(amb.rows)
    text = amb.text()

    def enc(case_id, outcome, data, source=AMB, **kw):
        C.append(FileCase(case_id, source, data, outcome, **kw))

    enc("utf32_with_bom", "rejected", text.encode("utf-32"), code="encoding", says=("UTF-32",))
    enc("utf16_big_endian_with_bom", "rejected", b"\xfe\xff" + text.encode("utf-16-be"), code="encoding", says=("UTF-16",))
    enc("utf16_without_bom", "rejected", text.encode("utf-16-le"), code="encoding", says=("NUL",))
    body = "\n".join(text.split("\n")[:3])
    enc("overlong_utf8", "rejected", amb.encode(body).replace(b"\n", b"\n\xc0\xaf", 1), code="encoding", says=("line 2", "utf-8"))
    enc("utf8_encoded_surrogate", "rejected", text.encode().replace(b"\n", b"\n\xed\xa0\x80", 2), code="encoding", says=("line 2",))
    enc("multibyte_cut_at_end_of_file", "rejected", text.encode() + "é".encode()[:1], code="encoding", says=(f"line {na + 2}",))
    enc("shift_jis", "rejected", amb.text(rows=[[*r[:5], "山田", *r[6:]] for r in amb.rows]).encode("shift_jis"),
        code="encoding", says=("line 2",))
    enc("gb18030", "rejected", amb.text(rows=[[*r[:5], "张伟", *r[6:]] for r in amb.rows]).encode("gb18030"),
        code="encoding", says=("line 2",))
    enc("ebcdic", "rejected", text.encode("cp500"), code="encoding", says=("line 1",))
    rows = police.copy_rows()
    rows[1][police.col("forename")] = "José"
    enc("cp1252_as_declared", "accepted", police.text(rows=rows).encode("cp1252"), source=POLICE, rows=len(rows),
        stored={(2, "forename"): "José"})
    enc("utf8_where_cp1252_is_declared", "rejected", police.text(rows=rows).encode("utf-8"), source=POLICE, code="encoding",
        says=("is UTF-8", "line 3", "cp1252"), never_says=("José",))
    enc("cp1252_undefined_byte", "rejected", police.text(rows=rows).encode("cp1252").replace(b"\xe9", b"\x81"), source=POLICE,
        code="encoding", says=("line 3", "cp1252"))
    enc("bom_where_cp1252_is_declared", "rejected", b"\xef\xbb\xbf" + police.text().encode("cp1252"), source=POLICE,
        code="encoding", says=("byte-order mark",))
    enc("two_byte_order_marks", "rejected", b"\xef\xbb\xbf" + school.bytes(), source=SCHOOL, code="missing_columns",
        says=("\\ufeff",))
    rows = amb.copy_rows()
    rows[0][amb.col("surname")] = "\u202eevil\u200b"
    enc("bidi_and_zero_width_characters_kept_as_data", "accepted", amb.bytes(rows=rows), rows=na,
        stored={(1, "surname"): "\u202eevil\u200b"})
    enc("bidi_override_in_a_column_name", "rejected", amb.bytes(header=[*amb.header[:-1], amb.header[-1] + "\u202e"]),
        code="missing_columns", says=("\\u202e",))
    return C


def _chart_only() -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart

    wb = Workbook()
    chart = wb.create_chartsheet("DFG")
    chart.add_chart(BarChart())
    wb.remove(wb.active if wb.active is not chart else wb.worksheets[0])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
