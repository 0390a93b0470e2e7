"""Identifier mess, string formatting, planted contract violations and file writers."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from orchestration.partnership.demo.ids import wrong_check_digit
from orchestration.partnership.demo.names import NICKNAMES

ALPHA = "abcdefghijklmnoprstuwy"


# ----------------------------------------------------------------------------- mess

def _typo(rng, s: str) -> str:
    if not s or len(s) < 3:
        return s
    i = int(rng.integers(1, len(s)))
    op = int(rng.integers(0, 3))
    if op == 0:  # substitution
        c = ALPHA[int(rng.integers(0, len(ALPHA)))]
        return s[:i] + c + s[i + 1:]
    if op == 1:  # deletion
        return s[:i] + s[i + 1:]
    j = min(i + 1, len(s) - 1)  # transposition
    return s[:i] + s[j] + s[i] + s[j + 1:] if j > i else s


def apply_mess(rng: np.random.Generator, df: pl.DataFrame, nhs_missing: float) -> pl.DataFrame:
    """Adds w_* columns: the identifiers as the agency wrote them (valid but messy)."""
    n = df.height
    fore = df["forename"].to_numpy().astype(object).copy()
    sur = df["surname"].to_numpy().astype(object).copy()
    canary = df["is_canary"].to_numpy()
    # nicknames
    nick = np.nonzero((rng.random(n) < 0.03) & ~canary)[0]
    for i in nick:
        fore[i] = NICKNAMES.get(fore[i], fore[i])
    # typos
    for arr, rate in ((fore, 0.012), (sur, 0.015)):
        for i in np.nonzero((rng.random(n) < rate) & ~canary)[0]:
            arr[i] = _typo(rng, arr[i])
    # swapped first/last names
    sw = np.nonzero((rng.random(n) < 0.003) & ~canary)[0]
    fore[sw], sur[sw] = sur[sw].copy(), fore[sw].copy()
    # day/month swapped in DOB when day <= 12 and != month
    dob = df["date_of_birth_true"]
    day = dob.dt.day().to_numpy()
    mon = dob.dt.month().to_numpy()
    yr = dob.dt.year().to_numpy()
    sw = (rng.random(n) < 0.01) & (day <= 12) & (day != mon)
    if "_day" in df.columns:  # never garble a DOB into a date after the event itself
        ev = df["_day"].to_numpy().astype("int64")
        for i in np.nonzero(sw)[0]:
            if date(int(yr[i]), int(day[i]), int(mon[i])).toordinal() - 719163 >= ev[i]:
                sw[i] = False
    y2, m2, d2 = yr.copy(), np.where(sw, day, mon), np.where(sw, mon, day)
    w_dob = pl.DataFrame({"y": y2, "m": m2, "d": d2}).select(pl.date("y", "m", "d"))["date"]
    # postcodes: spacing / case
    pc = df["postcode_true"].to_numpy().astype(object).copy()
    u = rng.random(n)
    for i in np.nonzero(u < 0.05)[0]:
        if pc[i]:
            pc[i] = pc[i].replace(" ", "")
    for i in np.nonzero((u >= 0.05) & (u < 0.07))[0]:
        if pc[i]:
            pc[i] = pc[i].lower()
    # sex not recorded
    sex = df["sex_true"].to_numpy().astype(object).copy()
    sex[rng.random(n) < 0.003] = None
    nhs = df["nhs_true"].to_numpy().astype(object).copy()
    nhs[(rng.random(n) < nhs_missing) & ~canary] = None
    upn = df["upn_true"].to_numpy().astype(object).copy()
    return df.with_columns(
        pl.Series("w_forename", fore.tolist(), dtype=pl.Utf8), pl.Series("w_surname", sur.tolist(), dtype=pl.Utf8),
        w_dob.alias("w_dob"), pl.Series("w_postcode", pc.tolist(), dtype=pl.Utf8), pl.Series("w_sex", sex.tolist(), dtype=pl.Utf8),
        pl.Series("w_nhs", nhs.tolist(), dtype=pl.Utf8), pl.Series("w_upn", upn.tolist(), dtype=pl.Utf8),
    )


# ----------------------------------------------------------------------------- formatting

def to_strings(df: pl.DataFrame, columns: list[str], types: dict[str, str], date_fmt: str, dt_fmt: str | None) -> pl.DataFrame:
    exprs = []
    for c in columns:
        t = types.get(c, "str")
        if t == "date":
            exprs.append(pl.col(c).dt.strftime(date_fmt).alias(c))
        elif t == "datetime":
            exprs.append(pl.col(c).dt.strftime(dt_fmt).alias(c))
        elif t == "bool":
            exprs.append(pl.when(pl.col(c)).then(pl.lit("true")).when(pl.col(c).not_()).then(pl.lit("false")).otherwise(None).alias(c))
        else:
            exprs.append(pl.col(c).cast(pl.Utf8).alias(c))
    out = df.select(exprs)
    # blank means missing: never write a quoted empty string
    return out.with_columns([pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in out.columns])


def impossible(fmt: str) -> str:
    return (fmt.replace("%Y", "2026").replace("%m", "02").replace("%d", "30")
            .replace("%H", "10").replace("%M", "15").replace("%S", "00"))


# ----------------------------------------------------------------------------- violations

def plant_violations(rng: np.random.Generator, s: pl.DataFrame, typed: pl.DataFrame, spec: dict,
                     types: dict, date_fmt: str, dt_fmt: str | None, rate: float, as_of: date):
    """Returns (string frame with violations, list of violation-kind lists per row)."""
    n = s.height
    tags: list[list[str]] = [[] for _ in range(n)]
    if rate <= 0 or n == 0 or not spec:
        return s, tags
    target = rate * n
    k = int(np.floor(target) + (rng.random() < target - np.floor(target)))
    if k == 0:
        return s, tags
    changes: dict[str, dict[int, str | None]] = {}

    class _Cols:
        """Sparse view: read through to the frame, remember writes."""

        def __getitem__(self, c):
            return _Col(c)

    class _Col:
        def __init__(self, c):
            self.c = c

        def __getitem__(self, i):
            ch = changes.get(self.c)
            if ch is not None and i in ch:
                return ch[i]
            return s[self.c][i]

        def __setitem__(self, i, v):
            changes.setdefault(self.c, {})[i] = v

    cols = _Cols()
    kinds = [kk for kk in ("required", "nhs_number_check_digit", "pattern", "allowed_values", "date_parse",
                           "range", "cross_field", "unique") if spec.get(kk)]
    if n < 2 and "unique" in kinds:
        kinds.remove("unique")
    rows = rng.permutation(n)
    used = set()
    ri = 0
    planted = 0

    def fmt_of(col):
        return dt_fmt if types.get(col) == "datetime" else date_fmt

    def apply(kind, i, touched) -> list[str] | None:
        """Apply a violation of `kind` to row i; return touched columns or None if impossible."""
        if kind == "required":
            c = spec["required"][int(rng.integers(len(spec["required"])))]
            if c in touched:
                return None
            cols[c][i] = None
            return [c]
        if kind == "nhs_number_check_digit":
            c = spec["nhs_number_check_digit"]
            true = typed["nhs_true"][i] if "nhs_true" in typed.columns else None
            if c in touched or not true:
                return None
            cols[c][i] = wrong_check_digit(true, int(rng.integers(0, 100)))
            return [c]
        if kind == "pattern":
            c, bad = spec["pattern"][int(rng.integers(len(spec["pattern"])))]
            if c in touched:
                return None
            cols[c][i] = bad
            return [c]
        if kind == "allowed_values":
            c, bad = spec["allowed_values"][int(rng.integers(len(spec["allowed_values"])))]
            if c in touched:
                return None
            cols[c][i] = bad
            return [c]
        if kind == "date_parse":
            c = spec["date_parse"][int(rng.integers(len(spec["date_parse"])))]
            if c in touched:
                return None
            cols[c][i] = impossible(fmt_of(c))
            return [c]
        if kind == "range":
            what, c = spec["range"][int(rng.integers(len(spec["range"])))]
            if c in touched:
                return None
            if what == "future_dob":
                cols[c][i] = (as_of + timedelta(days=int(rng.integers(30, 3000)))).strftime(date_fmt)
            elif what == "negative":
                v = cols[c][i]
                try:
                    x = abs(float(v)) if v else 0.0
                except ValueError:
                    x = 0.0
                if types.get(c) == "int":
                    cols[c][i] = str(-max(1, int(x)))
                else:
                    cols[c][i] = f"{-max(x, 100.0):.2f}"
            elif what == "attended_gt_possible":
                poss = int(typed["possible_sessions"][i])
                cols[c][i] = str(poss + int(rng.integers(1, 30)))
            return [c]
        if kind == "cross_field":
            early, late = spec["cross_field"][int(rng.integers(len(spec["cross_field"])))]
            if late in touched or early in touched or cols[early][i] is None:
                return None
            ev = typed[early][i]
            if ev is None:
                return None
            if types.get(late) == "int":  # e.g. attended_sessions above possible_sessions
                cols[late][i] = str(int(ev) + int(rng.integers(1, 30)))
                return [late, early]
            if types.get(late) == "datetime":
                nv = ev - timedelta(hours=int(rng.integers(2, 96)))
            else:
                nv = ev - timedelta(days=int(rng.integers(1, 20)))
            cols[late][i] = nv.strftime(fmt_of(late))
            return [late, early]
        return None

    while planted < k and ri < n:
        i = int(rows[ri]); ri += 1
        if i in used:
            continue
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "unique":
            # pick a partner row not yet used
            j = None
            while ri < n:
                cand = int(rows[ri]); ri += 1
                if cand not in used:
                    j = cand
                    break
            if j is None:
                break
            for c in spec["unique"]:
                cols[c][j] = cols[c][i]
            tags[i].append("unique"); tags[j].append("unique")
            used.update((i, j))
            planted += 2
            continue
        touched = apply(kind, i, [])
        if touched is None:
            continue
        tags[i].append(kind)
        used.add(i)
        planted += 1
        if rng.random() < 0.12:  # sometimes a second, independent rule
            k2 = [x for x in kinds if x not in ("unique", kind)]
            if k2:
                kind2 = k2[int(rng.integers(len(k2)))]
                t2 = apply(kind2, i, touched)
                if t2 is not None:
                    tags[i].append(kind2)
    out = s
    for c, ch in changes.items():
        idx = np.fromiter(ch.keys(), dtype=np.int64, count=len(ch))
        vals = pl.Series(c, list(ch.values()), dtype=pl.Utf8)
        out = out.with_columns(out[c].scatter(idx, vals))
    return out, tags


# ----------------------------------------------------------------------------- writers

def write_csv(path, s: pl.DataFrame, sep: str, encoding: str, bom: bool, eol: str, chunk=250_000,
              append: bool = False):
    """`append`: add the rows to a file this function wrote before (no mark, no header)."""
    with open(path, "ab" if append else "wb") as f:
        if bom and not append:
            f.write(b"\xef\xbb\xbf")
        if s.height == 0:
            if not append:
                f.write((sep.join(s.columns) + eol).encode(encoding))
            return
        for start in range(0, s.height, chunk):
            part = s.slice(start, chunk)
            buf = io.BytesIO()
            part.write_csv(buf, separator=sep, line_terminator=eol, include_header=(start == 0 and not append),
                           quote_style="necessary", null_value="")
            data = buf.getvalue()
            if encoding.lower() not in ("utf-8", "utf8"):
                data = data.decode("utf-8").encode(encoding)
            f.write(data)


FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def _parse_date(v):
    if v is None:
        return None
    try:
        return date.fromisoformat(v)
    except ValueError:
        return v


def _parse_num(v, as_int):
    if v is None or v == "":
        return None
    try:
        return int(v) if as_int else float(v)
    except ValueError:
        return v


def write_xlsx(path, s: pl.DataFrame, types: dict, title: str, created: datetime):
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Sheet1")
    ws.append([title])
    ws.append(list(s.columns))
    conv = []
    for c in s.columns:
        t = types.get(c, "str")
        conv.append(t)
    for row in s.iter_rows():
        out = []
        for v, t in zip(row, conv):
            if t == "date":
                pv = _parse_date(v)
                if isinstance(pv, date):
                    cell = WriteOnlyCell(ws, value=pv)
                    cell.number_format = "DD/MM/YYYY"
                    out.append(cell)
                else:
                    out.append(pv)
            elif t in ("int", "float"):
                out.append(_parse_num(v, t == "int"))
            else:
                out.append(v)
        ws.append(out)
    wb.properties.created = created
    wb.properties.creator = "Riverside District Council"
    buf = io.BytesIO()
    wb.save(buf)
    # rewrite the zip with fixed timestamps (byte-identical reruns)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                txt = data.decode("utf-8")
                txt = re.sub(r"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", r"\g<1>" + stamp + r"\g<2>", txt)
                txt = re.sub(r"(<dcterms:created[^>]*>)[^<]*(</dcterms:created>)", r"\g<1>" + stamp + r"\g<2>", txt)
                data = txt.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, data)


def write_parquet(path, s: pl.DataFrame, types: dict):
    pq.write_table(parquet_table(s, types), path, compression="zstd", write_statistics=True)


def parquet_table(s: pl.DataFrame, types: dict):
    """The delivered strings as typed Arrow columns, as an agency's parquet file holds them."""
    exprs = []
    for c in s.columns:
        t = types.get(c, "str")
        if t == "date":
            exprs.append(pl.col(c).str.to_date("%Y-%m-%d", strict=False).alias(c))
        elif t == "int":
            exprs.append(pl.col(c).cast(pl.Int64, strict=False).alias(c))
        elif t == "bool":
            exprs.append(pl.col(c).replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean).alias(c))
        else:
            exprs.append(pl.col(c))
    t = s.select(exprs).to_arrow()
    # plain, stable schema without pandas/polars metadata
    return t.replace_schema_metadata(None)


def write_truth_parquet(path, df: pl.DataFrame):
    t = df.to_arrow().replace_schema_metadata(None)
    pq.write_table(t, path, compression="zstd")
