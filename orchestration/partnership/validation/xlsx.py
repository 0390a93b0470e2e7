"""Read a workbook delivery into rows of text: the one data sheet, from its header row down.

A workbook can hide what a reader of the cells would miss, so these refuse the delivery with
the sheet and the cell: a formula never calculated, a formula that ends in an error, merged
cells below the header (one value standing for several rows), values outside the header's
columns when the contract rejects extra columns, a hidden sheet beside the data, a chart
where the table should be. A date typed as a number (a serial) is text like any other and
the row's date rule quarantines it."""

from __future__ import annotations

import re
import zipfile
from datetime import date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.validation.header import DeliveryRejected, header_check

MAX_XLSX_UNCOMPRESSED = 512 * 1024 * 1024  # a zip bomb is refused before it is opened
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE2 compound file: old .xls, or an encrypted workbook
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")  # the stream an encrypted OOXML file keeps its workbook in
_SHEET_XML = re.compile(r"xl/worksheets/[^/]+\.xml$")


def _excel_value(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (time, timedelta)):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index)


def _open(path: Path, name: str, data_only: bool = True, read_only: bool = True):
    from openpyxl import load_workbook

    try:
        return load_workbook(path, read_only=read_only, data_only=data_only)
    except Exception as exc:
        raise DeliveryRejected("unreadable", f"{name}: the workbook cannot be opened ({type(exc).__name__})") from None


def _uncalculated_formulas(path: Path, name: str) -> None:
    """A formula with no stored result means the value was never computed: the data is not in the file.

    (A workbook saved by a spreadsheet program stores each formula's result, which is what is read.)"""
    formulas = _open(path, name, data_only=False)
    values = _open(path, name)
    try:
        for sheet in formulas.sheetnames:
            if not hasattr(formulas[sheet], "iter_rows"):
                continue  # a chartsheet holds no cells
            for frow, vrow in zip(formulas[sheet].iter_rows(), values[sheet].iter_rows()):
                for f, v in zip(frow, vrow):
                    if isinstance(f.value, str) and f.data_type == "f" and v.value is None:
                        raise DeliveryRejected("unreadable", f"{name}: sheet {sheet!r} cell {f.coordinate} holds a formula with "
                                                             "no calculated value; save the workbook with values (or paste "
                                                             "values) and send it again")
    finally:
        formulas.close()
        values.close()


def _survey(path: Path, name: str) -> tuple[int, set[str]]:
    """The workbook's uncompressed size, and which oddities its parts show (formulas, errors, merges, hidden sheets)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            if total > MAX_XLSX_UNCOMPRESSED:
                raise DeliveryRejected("unreadable", f"{name}: the workbook expands to {total // 2**20} MiB, over the "
                                                     f"{MAX_XLSX_UNCOMPRESSED // 2**20} MiB limit")
            found: set[str] = set()
            for i in infos:
                if _SHEET_XML.match(i.filename):
                    xml = zf.read(i)
                    if re.search(rb"<f[ >/]", xml):
                        found.add("formulas")
                    if re.search(rb'<c [^>]*t="e"', xml):
                        found.add("errors")
                    if b"<mergeCell " in xml:
                        found.add("merges")
                elif i.filename == "xl/workbook.xml" and re.search(rb'state="(very)?[hH]idden"', zf.read(i)):
                    found.add("hidden")
            return total, found
    except zipfile.BadZipFile:
        data = path.read_bytes()
        if data.startswith(OLE_MAGIC):
            if ENCRYPTED_PACKAGE in data:
                raise DeliveryRejected("unreadable", f"{name}: the workbook is password-protected; send it without a password "
                                                     "(over the secure transfer)") from None
            raise DeliveryRejected("unreadable", f"{name}: an old-format .xls workbook; the contract expects .xlsx") from None
        raise DeliveryRejected("unreadable", f"{name}: not a valid .xlsx file (corrupt or not a workbook)") from None
    except (zipfile.LargeZipFile, NotImplementedError, OSError, EOFError, ValueError, RuntimeError) as exc:
        raise DeliveryRejected("unreadable", f"{name}: not a valid .xlsx file ({type(exc).__name__})") from None


def _layout_rules(path: Path, contract: Contract, name: str, sheet: str, found: set[str]) -> None:
    """Hidden sheets and merged cells, from the workbook's full model (opened only when the parts show any)."""
    wb = _open(path, name, read_only=False)
    try:
        hidden = [s.title for s in wb.worksheets + wb.chartsheets if s.sheet_state != "visible"]
        if sheet in hidden:
            raise DeliveryRejected("sheet", f"{name}: the data sheet {sheet!r} is hidden; show it, or send the data on a visible sheet")
        if "merges" in found and hasattr(wb[sheet], "merged_cells"):
            below = sorted(str(r) for r in wb[sheet].merged_cells.ranges if r.max_row > contract.format.header_row)
            if below:
                shown = ", ".join(below[:5]) + (f" and {len(below) - 5} more" if len(below) > 5 else "")
                raise DeliveryRejected("merged_cells", f"{name}: sheet {sheet!r} has merged cells below the header ({shown}); "
                                                       "one value would stand for several rows: unmerge them, fill every "
                                                       "row and send it again")
    finally:
        wb.close()


def _data_sheet(wb, contract: Contract, name: str, hidden: bool):
    if contract.format.sheet:
        if contract.format.sheet not in wb.sheetnames:
            raise DeliveryRejected("sheet", f"{name}: no sheet named {contract.format.sheet!r} (found {wb.sheetnames})")
        title = contract.format.sheet
    elif len(wb.sheetnames) != 1:
        note = " (some hidden)" if hidden else ""
        raise DeliveryRejected("sheet", f"{name}: {len(wb.sheetnames)} sheets{note}; the contract expects one (or names the sheet)")
    else:
        title = wb.sheetnames[0]
    ws = wb[title]
    if not hasattr(ws, "iter_rows"):
        raise DeliveryRejected("sheet", f"{name}: sheet {title!r} is a chart, not a table of rows")
    return title, ws


def _error_cells(ws, sheet: str, header_row: int, name: str) -> None:
    for row in ws.iter_rows(min_row=header_row):
        for cell in row:
            if getattr(cell, "data_type", None) == "e":
                raise DeliveryRejected("formula_error", f"{name}: sheet {sheet!r} cell {cell.coordinate} holds a formula "
                                                        "error instead of a value; correct the formula and send it again")


def read_xlsx(path: Path, contract: Contract, name: str) -> pl.DataFrame:
    _, found = _survey(path, name)
    if "formulas" in found:
        _uncalculated_formulas(path, name)
    wb = _open(path, name)
    try:
        sheet, ws = _data_sheet(wb, contract, name, "hidden" in found)
        header_row = contract.format.header_row
        if "errors" in found:
            _error_cells(ws, sheet, header_row, name)
        rows = ws.iter_rows(min_row=header_row, values_only=True)
        header = next(rows, None)
        if header is None:
            raise DeliveryRejected("empty", f"{name}: no header on row {header_row}")
        columns = [str(h).strip() if h is not None else "" for h in header]
        while columns and columns[-1] == "":
            columns.pop()
        if "" in columns:
            raise DeliveryRejected("header", f"{name}: blank column name on row {header_row} (merged or missing header cells)")
        header_check(columns, contract, name)
        width, outside, data = len(columns), None, []
        for i, r in enumerate(rows, start=1):
            if outside is None and any(v is not None and str(v).strip() for v in r[width:]):
                col = width + next(j for j, v in enumerate(r[width:]) if v is not None and str(v).strip()) + 1
                outside = (i, col)
            data.append([_excel_value(v) for v in r[:width]] + [None] * max(0, width - len(r)))
    finally:
        wb.close()
    if outside and contract.format.extra_columns == "reject":
        row, col = outside
        raise DeliveryRejected("extra_columns", f"{name}: sheet {sheet!r} has values outside the header's {width} columns "
                                                f"(column {_column_letter(col)}, first at row {row + header_row}, data row {row}); "
                                                "the contract allows no extra columns")
    if found & {"merges", "hidden"}:
        _layout_rules(path, contract, name, sheet, found)
    while data and all(v is None for v in data[-1]):
        data.pop()
    schema = {c: pl.Utf8 for c in columns}
    return pl.DataFrame(data, schema=schema, orient="row") if data else pl.DataFrame(schema=schema)
