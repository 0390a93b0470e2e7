"""Read a delivered file, as its contract says it is written, into rows of text.

Every value is kept as text here: typing is a contract rule, checked row by row later, so
a bad value quarantines its row instead of failing the file. What fails here fails the
whole delivery, with a reason a data owner can act on (and no row values in it).
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path

import polars as pl

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.validation.header import (
    ROW_NUMBER,
    DeliveryRejected,
    header_check,
)
from orchestration.partnership.validation.parquet import read_parquet
from orchestration.partnership.validation.xlsx import read_xlsx

BOM = b"\xef\xbb\xbf"


def _decode(data: bytes, contract: Contract, name: str) -> str:
    encoding = contract.format.encoding
    if data[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        raise DeliveryRejected("encoding", f"{name}: the file is UTF-32; the contract says {encoding}")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DeliveryRejected("encoding", f"{name}: the file is UTF-16; the contract says {encoding}")
    has_bom = data.startswith(BOM)
    if encoding == "utf-8-sig" and not has_bom:
        raise DeliveryRejected("encoding", f"{name}: the file has no UTF-8 byte-order mark; the contract says UTF-8 with BOM")
    if encoding != "utf-8-sig" and has_bom:
        raise DeliveryRejected("encoding", f"{name}: the file starts with a UTF-8 byte-order mark; the contract says {encoding} without one")
    if b"\x00" in data:
        offset = data.index(b"\x00")
        raise DeliveryRejected("encoding", f"{name}: the file contains NUL bytes (first at byte {offset}); it is not a {encoding} text file")
    codec = "utf-8" if encoding.startswith("utf-8") else encoding
    try:
        text = data[len(BOM) if has_bom else 0:].decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DeliveryRejected("encoding", f"{name}: line {line} is not valid {encoding} (byte {exc.start})") from None
    if not codec.startswith("utf") and not data.isascii():
        _not_utf8_in_disguise(data, encoding, name)
    return text


def _not_utf8_in_disguise(data: bytes, encoding: str, name: str) -> None:
    """A single-byte encoding decodes any bytes, so UTF-8 read as cp1252 would load as mojibake
    ('JosÃ©'). Text in a single-byte encoding is almost never also valid UTF-8 with multi-byte
    characters: when it is, the file was written as UTF-8, and is refused."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return
    first = next(i for i, b in enumerate(data) if b > 0x7F)
    line = data[:first].count(b"\n") + 1
    raise DeliveryRejected("encoding", f"{name}: the file is UTF-8 (first non-ASCII character on line {line}); "
                                       f"the contract says {encoding}")


_MAX_FIELD_CHARS = 16 * 1024 * 1024  # a field longer than this is not data


def _csv_structure(text: str, contract: Contract, name: str) -> tuple[list[str], int]:
    """The header and the number of data records, by a quote-aware pass over the whole file.

    Every record must have as many fields as the header; a quoted field must be closed; a file
    whose last record is cut short is truncated. Blank lines are records (of blanks): polars reads
    them so, and the row rules judge them. Line numbers are physical lines of the file."""
    fmt = contract.format
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD_CHARS))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter, quotechar=fmt.quote, strict=True)
    header: list[str] | None = None
    records = 0
    last_line = 0
    skip = fmt.header_row - 1
    try:
        for fields in reader:
            start, last_line = last_line + 1, reader.line_num
            if skip:
                skip -= 1
                continue
            if header is None:
                header = [f.strip() for f in fields]
                continue
            records += 1
            if not fields or all(not f.strip() for f in fields):
                continue
            if max(len(f) for f in fields) > _MAX_FIELD_CHARS:
                raise DeliveryRejected("unparseable", f"{name}: row {records} (line {start}) has a field over {_MAX_FIELD_CHARS // 2**20} MiB")
            if len(fields) != len(header):
                if len(fields) < len(header) and not text.endswith(("\n", "\r")) and last_line == text.count("\n") + 1:
                    raise DeliveryRejected("truncated", f"{name}: the file ends part-way through row {records} (line {start}: "
                                                        f"{len(fields)} of {len(header)} fields, no line end); the delivery was cut short")
                raise DeliveryRejected("unparseable", f"{name}: row {records} (line {start}) has {len(fields)} fields; "
                                                      f"the header has {len(header)}")
    except csv.Error as exc:
        msg = str(exc)
        if "end of data" in msg or "EOF" in msg:
            raise DeliveryRejected("unparseable", f"{name}: a quoted field opened on line {last_line + 1} is never closed "
                                                  f"(unterminated {fmt.quote} quote)") from None
        if "field larger" in msg:
            raise DeliveryRejected("unparseable", f"{name}: line {last_line + 1} has a field over {_MAX_FIELD_CHARS // 2**20} MiB") from None
        raise DeliveryRejected("unparseable", f"{name}: line {reader.line_num}: malformed quoting "
                                              f"({msg.split(':')[0] if ':' in msg else msg})") from None
    if header is None:
        raise DeliveryRejected("empty", f"{name}: the file is empty")
    return header, records


def _csv_structure_fast(text: str, contract: Contract, name: str) -> tuple[list[str], int]:
    """`_csv_structure` for a well-formed file, in a tighter loop; anything unusual is left to it.

    With the csv module's field limit at `_MAX_FIELD_CHARS` the module itself refuses a longer
    field, so only the field count is checked per record. Any csv error or a record of the wrong
    width sends the file through `_csv_structure`, which finds the same fault and says where."""
    fmt = contract.format
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD_CHARS))
    if csv.field_size_limit() != _MAX_FIELD_CHARS:
        return _csv_structure(text, contract, name)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter, quotechar=fmt.quote, strict=True)
    try:
        for _ in range(fmt.header_row - 1):
            next(reader)
        header = [f.strip() for f in next(reader)]
        width, records = len(header), 0
        for fields in reader:
            records += 1
            if len(fields) != width and (fields and not all(not f.strip() for f in fields)):
                return _csv_structure(text, contract, name)
    except (csv.Error, StopIteration):
        return _csv_structure(text, contract, name)
    return header, records


def _polars_csv(data: bytes, contract: Contract) -> pl.DataFrame:
    fmt = contract.format
    return pl.read_csv(
        io.BytesIO(data),
        separator=fmt.delimiter,
        quote_char=fmt.quote,
        skip_rows=fmt.header_row - 1,
        infer_schema=False,
        has_header=True,
        raise_if_empty=True,
        truncate_ragged_lines=False,  # a record with more fields than the header is an error (`_counted_structure` relies on it)
    )


def _counted_structure(data: bytes, contract: Contract) -> tuple[list[str], int] | None:
    """`_csv_structure`'s header and record count, by counting bytes instead of parsing in Python.

    Without quotes (and without a lone carriage return, which the csv module ends a record on)
    a record is a line and its fields are split by the delimiter. polars refuses a record with
    more fields than the header, so when it has read the file and the delimiters after the header
    number exactly (fields - 1) x records, every record has exactly as many fields as the header:
    none short, none cut off. A file with quotes below its header is counted by `_quoted_records`.
    None when the file needs the quote-aware pass (quotes in or above the header, lone CRs,
    blank lines or any mismatch); that pass then names the row at fault, if there is one."""
    fmt = contract.format
    delim, quote = fmt.delimiter.encode("utf-8"), fmt.quote.encode("utf-8")
    if len(delim) != 1 or len(quote) != 1 or delim == quote:
        return None
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return None
    start = 0
    for _ in range(fmt.header_row - 1):  # lines above the header
        start = data.find(b"\n", start) + 1
        if not start:
            return None
    end = data.find(b"\n", start)
    end = len(data) if end == -1 else end
    if quote in data[:end]:
        return None
    line = data[start:end].decode("utf-8").removesuffix("\r")
    if not line.strip() or end - start > _MAX_FIELD_CHARS:
        return None
    header = [f.strip() for f in line.split(fmt.delimiter)]
    body = end + 1
    if data.find(quote, body) != -1:
        records = _quoted_records(data, body, delim, quote[0], len(header))
        return None if records is None else (header, records)
    records = data.count(b"\n", body) + (1 if body < len(data) and not data.endswith(b"\n") else 0)
    if data.count(delim, body) != (len(header) - 1) * records:
        return None
    return header, records


def _quoted_records(data: bytes, body: int, delim: bytes, quote: int, width: int) -> int | None:
    """`_counted_structure`'s record count for a file with quoted fields below its header (from byte
    `body`); None for anything the quote-aware pass must look at.

    A byte is inside a quoted field when an odd number of quote characters precede it, provided
    each quote stands where the csv module (strict) reads one: an opening quote begins a field
    (after a delimiter or a line end) or follows a closing quote (a doubled, escaped quote); a
    closing quote ends the field (a delimiter, a line end or the file's end follows) or is doubled.
    Then the line ends outside quotes end the records and the delimiters outside quotes split
    their fields, as the csv module splits them; counted as in `_counted_structure`, less those
    between each opening quote and its closing one."""
    import numpy as np

    arr = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(arr[body:] == quote) + body
    if len(quotes) % 2:
        return None  # a quoted field never closed
    opening, closing = quotes[0::2], quotes[1::2]
    before = arr[opening - 1]
    if not np.all((before == delim[0]) | (before == ord("\n")) | (before == quote)):
        return None
    after = arr[closing[closing < len(arr) - 1] + 1]
    if not np.all((after == delim[0]) | (after == ord("\n")) | (after == ord("\r")) | (after == quote)):
        return None
    spans = (opening.tolist(), closing.tolist())
    lines = data.count(b"\n", body) - sum(map(data.count, repeat(b"\n"), *spans))
    records = lines + (1 if body < len(data) and not data.endswith(b"\n") else 0)
    if data.count(delim, body) - sum(map(data.count, repeat(delim), *spans)) != (width - 1) * records:
        return None
    return records


def _fits(df: pl.DataFrame, data: bytes) -> bool:
    """No value longer than the quote-aware pass allows (bytes bound characters from above)."""
    if len(data) <= _MAX_FIELD_CHARS or not df.width:
        return True
    longest = df.select(pl.max_horizontal(pl.all().str.len_bytes().max())).item()
    return longest is None or longest <= _MAX_FIELD_CHARS


def _read_csv(path: Path, contract: Contract, name: str) -> pl.DataFrame:
    fmt = contract.format
    raw = path.read_bytes()
    utf8 = fmt.encoding.startswith("utf-8")
    mac = b"\r" in raw and b"\n" not in raw  # classic Mac line endings
    # polars parses the bytes (releasing the GIL) while they are decoded and the structure is
    # checked: by counting bytes when the file has no quotes, else (or when that does not settle
    # it) by the quote-aware pass, which names the row at fault. polars' result, or its error, is
    # only looked at once the encoding, structure and header have passed.
    with ThreadPoolExecutor(max_workers=1) as pool:
        data = raw[len(BOM):] if raw.startswith(BOM) else raw  # UTF-8 as decoded, once `_decode` has passed it
        plain = utf8 and not mac and raw[:2] not in (b"\xff\xfe", b"\xfe\xff") and b"\x00" not in raw
        parsing = pool.submit(_polars_csv, data, contract) if plain else None
        text = _decode(raw, contract, name)
        if not text or text.isspace():  # as `not text.strip()`, without copying the whole file
            raise DeliveryRejected("empty", f"{name}: the file is empty")
        if mac:
            text = text.replace("\r", "\n")
            data = text.encode("utf-8")
        elif not utf8:
            data = text.encode("utf-8")  # polars reads UTF-8 only
        parsing = parsing or pool.submit(_polars_csv, data, contract)
        counted = _counted_structure(data, contract)
        df = None
        if counted is not None:
            try:
                df = parsing.result()
            except Exception:  # the quote-aware pass below says where, or the error is reported as below
                df = None
            if df is not None and (df.height != counted[1] or not _fits(df, data)):
                df = None
        if df is not None:
            header, records = counted
        else:
            header, records = _csv_structure_fast(text, contract, name)
        if len(header) == 1 and fmt.delimiter not in header[0] and len(contract.columns) > 1:
            for other in (",", "|", ";", "\t"):
                if other != fmt.delimiter and other in header[0]:
                    raise DeliveryRejected("delimiter", f"{name}: the header is {other!r}-delimited; the contract says {fmt.delimiter!r}")
        header_check(header, contract, name)
        try:
            df = parsing.result()
        except pl.exceptions.NoDataError:
            raise DeliveryRejected("empty", f"{name}: the file is empty") from None
        except Exception as exc:  # polars parse errors: report the kind, never the values
            kind = type(exc).__name__
            raise DeliveryRejected("unparseable", f"{name}: cannot be read as {fmt.delimiter!r}-delimited CSV ({kind})") from None
    if df.height != records:  # two readings of the file disagree: trust neither
        raise DeliveryRejected("unparseable", f"{name}: {records} rows by a quote-aware reading but {df.height} by line; "
                                              "mixed line endings inside the data, or stray quote characters")
    return df.rename(dict(zip(df.columns, header)))


READERS = {"csv": _read_csv, "xlsx": read_xlsx, "parquet": read_parquet}


def read_delivery(path: Path, contract: Contract, name: str | None = None) -> pl.DataFrame:
    """Rows of the file as text, in contract column order, numbered from 1 (data rows, after the header).

    `name` is the file's name as delivered, for messages (the file read may be its archived copy).
    A header with no rows is a valid file; whether zero rows is acceptable is the contract's row-count rule."""
    name = name or Path(path).name
    try:
        df = READERS[contract.format.type](Path(path), contract, name)
    except DeliveryRejected:
        raise
    except MemoryError:
        raise DeliveryRejected("unreadable", f"{name}: the file is too large to read in the memory available") from None
    except Exception as exc:  # whatever else a hostile file makes a parser do: the delivery is refused, never the step
        raise DeliveryRejected("unreadable", f"{name}: cannot be read as {contract.format.type} "
                                             f"({type(exc).__name__}); check the file opens, and send it again") from None
    header_check(df.columns, contract, name)
    # Blank means missing, whatever the format: trimmed empty strings become nulls.
    df = df.select([pl.col(c).str.strip_chars().replace("", None).alias(c) for c in contract.column_names])
    return df.with_row_index(ROW_NUMBER, offset=1).with_columns(pl.col(ROW_NUMBER).cast(pl.Int64))
