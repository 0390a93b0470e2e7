"""Read a Parquet delivery into rows of text, column by column, by what each column's Arrow type is.

A column holds one value per row of a type that has a text form the contract's row rules can
judge (text, numbers, true/false, dates and times), or the whole delivery is refused naming the
column and what it holds instead: a list, a struct or a map holds several values per row, a
time of day or a duration is no date, and bytes that are not UTF-8 are no text. Only the
contract's own columns are read (the header rule has judged the others)."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orchestration.partnership.contracts.model import Column, Contract
from orchestration.partnership.validation.header import (
    DeliveryRejected,
    header_check,
    show,
)

_ARTICLE = {"integer": "an integer", "number": "a number", "string": "a text", "date": "a date",
            "timestamp": "a timestamp", "boolean": "a true/false"}


def _nested(t: pa.DataType) -> str | None:
    """What a column of several values per row holds, as a data owner would say it; None when scalar."""
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or _is_list_view(t):
        return "a list (several values in each row)"
    if pa.types.is_map(t):
        return "a map (key-value pairs in each row)"
    if pa.types.is_struct(t):
        return "a struct (several named fields in each row)"
    if pa.types.is_union(t):
        return "values of several types (a union)"
    if pa.types.is_run_end_encoded(t):
        return _nested(t.value_type)
    return None


def _is_list_view(t: pa.DataType) -> bool:
    check = getattr(pa.types, "is_list_view", None)
    large = getattr(pa.types, "is_large_list_view", None)
    return bool((check and check(t)) or (large and large(t)))


def _kind(t: pa.DataType) -> str:
    """The family of a scalar Arrow type: how its values become text."""
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    if pa.types.is_run_end_encoded(t):
        return _kind(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t) or pa.types.is_binary_view(t):
        return "bytes"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return "duration"
    if pa.types.is_null(t):
        return "null"
    return "other"


# Which Arrow families each contract type takes: text is parsed by the row rules (as CSV text is);
# the others are turned into the text the contract's format reads.
_TAKES = {
    "string": {"text", "bytes", "boolean", "integer", "float", "decimal", "date", "timestamp", "null"},
    "integer": {"text", "bytes", "integer", "float", "decimal", "null"},
    "number": {"text", "bytes", "integer", "float", "decimal", "null"},
    "boolean": {"text", "bytes", "boolean", "integer", "null"},
    "date": {"text", "bytes", "date", "timestamp", "null"},
    "timestamp": {"text", "bytes", "date", "timestamp", "null"},
}
_SAYS = {"time": "times of day", "duration": "durations", "boolean": "true/false values", "integer": "integers",
         "float": "decimal numbers", "decimal": "decimal numbers", "date": "dates", "timestamp": "timestamps",
         "other": "values of a type with no text form"}


def _refuse(name: str, column: str, holds: str, col: Column) -> DeliveryRejected:
    return DeliveryRejected("column_type", f"{name}: column {show(column)!r} holds {holds}; the contract expects "
                                           f"{_ARTICLE[col.logical_type]} value in each row (column type rule)")


def _plain(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary and run-end encodings undone: the values themselves."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = pa.chunked_array([c.dictionary_decode() for c in arr.chunks], type=t.value_type)
    elif pa.types.is_run_end_encoded(t):
        arr = pa.chunked_array([pc.run_end_decode(c) for c in arr.chunks], type=t.value_type)
        return _plain(arr)
    return arr


def _utf8(arr: pa.ChunkedArray, name: str, column: str, col: Column) -> pa.ChunkedArray:
    """Bytes as text, or the first row whose bytes are not UTF-8."""
    if pa.types.is_fixed_size_binary(arr.type) or pa.types.is_binary_view(arr.type):
        arr = pc.cast(arr, pa.large_binary())
    try:
        return pc.cast(arr, pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    row = 0
    for row, value in enumerate(arr.to_pylist(), start=1):
        if value is not None:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                break
    raise _refuse(name, column, f"bytes that are not UTF-8 text (first at row {row})", col)


def _text(arr: pa.ChunkedArray, col: Column, name: str) -> pl.Series:
    """One column's values as text, as the contract's row rules read them."""
    from orchestration.partnership.validation.rows import strftime_format

    kind = _kind(arr.type)
    if _nested(arr.type) or kind not in _TAKES[col.logical_type]:
        raise _refuse(name, col.name, _nested(arr.type) or _SAYS.get(kind, _SAYS["other"]), col)
    arr = _plain(arr)
    if kind == "bytes":
        arr, kind = _utf8(arr, name, col.name, col), "text"
    if kind == "null":
        return pl.Series(col.name, [None] * len(arr), dtype=pl.Utf8)
    if kind == "text":
        return pl.Series(col.name, pc.cast(arr, pa.large_string())).cast(pl.Utf8)
    if kind == "decimal":
        text = pl.Series(col.name, pc.cast(arr, pa.large_string())).cast(pl.Utf8)
        # 12.00 is the integer 12; 12.50 stays as written, and the row rule refuses it as an integer.
        return text.str.replace(r"^(-?[0-9]+)\.0+$", "$1") if col.logical_type == "integer" else text
    if kind == "float":
        s = pl.Series(col.name, pc.cast(arr, pa.float64()))
        whole = s.is_finite() & (s == s.floor()) & (s.abs() < 2**63)
        as_int = pl.select(pl.when(whole).then(s.cast(pl.Int64, strict=False).cast(pl.Utf8))
                           .otherwise(s.cast(pl.Utf8))).to_series()
        return as_int.alias(col.name)
    if kind == "integer":
        return pl.Series(col.name, pc.cast(arr, pa.large_string())).cast(pl.Utf8)
    if kind == "boolean":
        return pl.Series(col.name, arr).replace_strict({True: "true", False: "false"}, return_dtype=pl.Utf8)
    s = pl.Series(col.name, arr)
    if kind == "timestamp" and s.dtype.time_zone is not None:  # type: ignore[union-attr]
        s = s.dt.replace_time_zone(None)  # the wall-clock time as the agency recorded it
    if col.logical_type in ("date", "timestamp"):
        fmt = strftime_format(col.date_format or ("yyyy-MM-dd" if col.logical_type == "date" else "yyyy-MM-dd HH:mm:ss"))
        if col.logical_type == "date" and kind == "timestamp":
            frame = pl.DataFrame({"v": s})
            midnight = pl.col("v").dt.time() == pl.lit(time(0))
            return frame.select(pl.when(midnight).then(pl.col("v").dt.strftime(fmt))
                                .otherwise(pl.col("v").dt.strftime("%Y-%m-%d %H:%M:%S"))).to_series().alias(col.name)
        return s.dt.strftime(fmt).alias(col.name)
    return s.dt.strftime("%Y-%m-%d" if kind == "date" else "%Y-%m-%d %H:%M:%S").alias(col.name)


def read_parquet(path: Path, contract: Contract, name: str) -> pl.DataFrame:
    try:
        file = pq.ParquetFile(path)
        schema = file.schema_arrow
    except Exception as exc:  # a damaged footer, an encrypted file, not Parquet at all: the kind only
        raise DeliveryRejected("unreadable", f"{name}: not a readable Parquet file ({type(exc).__name__})") from None
    header_check(list(schema.names), contract, name)
    wanted = [c for c in contract.column_names if c in schema.names]
    for c in wanted:  # refused on the schema alone, before any data is read
        t = schema.field(c).type
        if _nested(t) or _kind(t) not in _TAKES[contract.column(c).logical_type]:
            raise _refuse(name, c, _nested(t) or _SAYS.get(_kind(t), _SAYS["other"]), contract.column(c))
    try:
        table = file.read(columns=wanted)
    except Exception as exc:  # a damaged page, an unknown compression: the kind only
        raise DeliveryRejected("unreadable", f"{name}: not a readable Parquet file: its data cannot be read "
                                             f"({type(exc).__name__})") from None
    finally:
        file.close()
    return pl.DataFrame([_text(table.column(c), contract.column(c), name) for c in wanted])
