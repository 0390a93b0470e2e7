"""Deliveries: when each agency's files arrive (the plan), and writing each file with its planted
violations while recording its rows' ground truth."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl
import pyarrow.parquet as pq

import orchestration.partnership.demo.extracts as X
import orchestration.partnership.demo.extracts_council as C
from orchestration.partnership.demo.identify import Key, attach, finish_identifiers
from orchestration.partnership.demo.output import (
    apply_mess,
    parquet_table,
    plant_violations,
    to_strings,
    write_csv,
    write_parquet,
    write_xlsx,
)
from orchestration.partnership.demo.spec import EXTRACTS
from orchestration.partnership.demo.world import FOREVER, World, d2i, i2d

ARRIVAL = time(1, 30)
LATE_ARRIVAL = time(7, 42)
SCHOOL = ("county_council", "school_attendance")
OPT_OUTS = ("nhs_optout", "opt_outs")


def utc(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=timezone.utc)


@dataclass
class Plan:
    """The periods and snapshot dates the files cover, counted back from `as_of`."""

    as_of: date
    hist_from: date
    last_night: date
    nights: list[date]
    hist_to: date
    weeks: list[tuple[date, date]]
    weekly_snaps: list[date]
    monthly_snaps: list[date]
    termly_snaps: list[date]


def plan_deliveries(as_of: date, hist_from: date, nightly_days: int) -> Plan:
    last_night = as_of - timedelta(days=1)
    nights = [as_of - timedelta(days=k) for k in range(nightly_days, 0, -1)]
    hist_to = nights[0] - timedelta(days=1)
    week_end = as_of - timedelta(days=(as_of.weekday() + 1) % 7 or 7)  # last Sunday strictly before as_of
    if (week_end + timedelta(days=1)) > as_of:
        week_end -= timedelta(days=7)
    weeks = [(week_end - timedelta(days=13), week_end - timedelta(days=7)), (week_end - timedelta(days=6), week_end)]
    monday = as_of - timedelta(days=as_of.weekday())
    weekly_snaps = [monday - timedelta(days=7), monday]
    m1 = as_of.replace(day=1)
    m0 = (m1 - timedelta(days=1)).replace(day=1)
    monthly_snaps = [m0, m1]
    term_ends = []
    for ay in range(as_of.year - 2, as_of.year + 1):
        for _, _, e in C.term_dates(ay):
            if e + timedelta(days=1) <= as_of:
                term_ends.append(e)
    termly_snaps = sorted(term_ends)[-2:]
    return Plan(as_of, hist_from, last_night, nights, hist_to, weeks, weekly_snaps, monthly_snaps, termly_snaps)


@dataclass
class Landing:
    """The landing folder being filled, and the truth about every row written to it."""

    data_dir: Path
    rng: Callable[[str], np.random.Generator]
    violation_rate: float
    as_of: date
    summary: dict
    record_parts: list[pl.DataFrame] = field(default_factory=list)
    delivery_rows: list[dict] = field(default_factory=list)
    # A sharded population's parts write the same files one after another: each part's rows are
    # appended (parquet through a writer kept open, workbooks held until `finish`).
    sharded: bool = False
    rows_in_file: dict[Path, int] = field(default_factory=dict)
    _parquet: dict = field(default_factory=dict)
    _workbooks: dict = field(default_factory=dict)
    _arrival: dict[Path, float] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.data_dir / "landing"

    def emit(self, key: Key, typed: pl.DataFrame, file_name: str, covers_from: date, covers_to: date,
             arrival: datetime, planted_late=False, snap_label=None) -> None:
        """Write one file of `typed` rows in the agency's format, with violations planted."""
        spec = EXTRACTS[key]
        agency, extract = key
        folder = self.folder / agency / extract
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name
        typed = typed.sort(spec["sort"]) if typed.height else typed
        s = to_strings(typed, spec["columns"], spec["types"], spec["date"], spec.get("dt"))
        s, tags = plant_violations(self.rng(f"viol/{agency}/{extract}/{file_name}"), s, typed, spec["viol"],
                                   spec["types"], spec["date"], spec.get("dt"), self.violation_rate, self.as_of)
        before = self.rows_in_file.get(path)
        if spec["fmt"] == "csv":
            write_csv(path, s, spec["sep"], spec["encoding"], spec["bom"], spec["eol"], append=before is not None)
        elif spec["fmt"] == "xlsx" and self.sharded:
            self._workbooks.setdefault(path, (spec["types"], spec["title"].format(snap=snap_label),
                                              datetime.combine(arrival.date(), time(0, 0)), []))[3].append(s)
        elif spec["fmt"] == "xlsx":
            write_xlsx(path, s, spec["types"], spec["title"].format(snap=snap_label),
                       datetime.combine(arrival.date(), time(0, 0)))
        elif self.sharded:
            t = parquet_table(s, spec["types"])
            if path not in self._parquet:
                self._parquet[path] = pq.ParquetWriter(path, t.schema, compression="zstd", write_statistics=True)
            self._parquet[path].write_table(t)
        else:
            write_parquet(path, s, spec["types"])
        ts = arrival.timestamp()
        self._arrival[path] = ts
        if path.exists():
            os.utime(path, (ts, ts))
        before = before or 0
        self.rows_in_file[path] = before + s.height
        if len(spec["key"]) == 1:
            rid = s[spec["key"][0]]
        else:
            rid = s.select(pl.concat_str([pl.col(c).fill_null("") for c in spec["key"]], separator="|"))[:, 0]
        self.record_parts.append(pl.DataFrame({
            "agency": [agency] * s.height, "extract": [extract] * s.height, "file_name": [file_name] * s.height,
            "row_number": np.arange(before + 1, before + s.height + 1, dtype=np.int64), "record_id": rid.cast(pl.Utf8),
            "true_record_id": typed["_key"].cast(pl.Utf8) if typed.height else pl.Series([], dtype=pl.Utf8),
            "person_id": typed["person_id"] if typed.height else pl.Series([], dtype=pl.Utf8),
            "violations": pl.Series(tags, dtype=pl.List(pl.Utf8)),
        }))
        self.delivery_rows.append(dict(agency=agency, extract=extract, file_name=file_name, planned_arrival=arrival,
                                       covers_from=covers_from, covers_to=covers_to, rows=s.height,
                                       planted_late=planted_late))
        self.summary["files"].append(str(path))
        self.summary["rows"][f"{agency}/{extract}"] = self.summary["rows"].get(f"{agency}/{extract}", 0) + s.height

    def finish(self) -> None:
        """Close what a sharded generation left open: parquet writers, the held workbooks."""
        for writer in self._parquet.values():
            writer.close()
        for path, (types, title, created, parts) in self._workbooks.items():
            write_xlsx(path, pl.concat(parts), types, title, created)
        for path in [*self._parquet, *self._workbooks]:
            os.utime(path, (self._arrival[path], self._arrival[path]))
        self._parquet, self._workbooks = {}, {}


def deliver_incremental(landing: Landing, frames: dict[Key, pl.DataFrame], plan: Plan) -> dict[Key, pl.DataFrame]:
    """Nightly and weekly extracts: a history file, then one file per period. Returns what was delivered."""
    delivered: dict[Key, pl.DataFrame] = {}
    for key, spec in EXTRACTS.items():
        if spec["cadence"] == "nightly":
            delivered[key] = _incremental(landing, key, frames[key], [(d, d) for d in plan.nights], plan)
        elif spec["cadence"] == "weekly":
            delivered[key] = _incremental(landing, key, frames[key], plan.weeks, plan)
    return delivered


def _incremental(landing: Landing, key: Key, f: pl.DataFrame, periods: list[tuple[date, date]],
                 plan: Plan) -> pl.DataFrame:
    ext = EXTRACTS[key]["fmt"]
    lo, hi = d2i(plan.hist_from), d2i(periods[0][0]) - 1
    delivered = []
    part = f.filter((pl.col("_rec") >= lo) & (pl.col("_rec") <= hi))
    landing.emit(key, part, f"{key[1]}_history_{plan.hist_from:%Y%m%d}_{i2d(hi):%Y%m%d}.{ext}", plan.hist_from,
                 i2d(hi), utc(i2d(hi) + timedelta(days=1), ARRIVAL))
    delivered.append(part)
    for (a, b) in periods:
        part = f.filter((pl.col("_rec") >= d2i(a)) & (pl.col("_rec") <= d2i(b)))
        late = key == ("county_ambulance", "incidents") and b == plan.last_night
        arr = utc(b + timedelta(days=1), LATE_ARRIVAL if late else ARRIVAL)
        landing.emit(key, part, f"{key[1]}_{b:%Y%m%d}.{ext}", a, b, arr, planted_late=late)
        delivered.append(part)
    return pl.concat(delivered)


def deliver_snapshots(landing: Landing, frames: dict[Key, pl.DataFrame], plan: Plan,
                      delivered: dict[Key, pl.DataFrame]) -> None:
    """Weekly (council workbooks) and monthly (age well) snapshots: every case so far, as it stood."""
    dfg, hl, aw = (("riverside_council", "housing_adaptations"), ("riverside_council", "homelessness_cases"),
                   ("riverside_agewell", "falls_class_referrals"))

    def dfg_snap(S: date):
        s = d2i(S)
        f = frames[dfg].filter(pl.col("_day") < s)
        return f.with_columns(
            pl.when(pl.col("_appr") < s).then(pl.col("_appr")).otherwise(None).alias("_a"),
            pl.when(pl.col("_comp") < s).then(pl.col("_comp")).otherwise(None).alias("_c"),
        ).with_columns(pl.col("_a").cast(pl.Date).alias("approval_date"), pl.col("_c").cast(pl.Date).alias("completion_date"))

    def hl_snap(S: date):
        s = d2i(S)
        f = frames[hl].filter(pl.col("_day") < s)
        return f.with_columns(pl.when(pl.col("_close") < s).then(pl.lit("CLOSED")).otherwise(pl.lit("OPEN")).alias("case_status"))

    def aw_snap(S: date):
        s = d2i(S)
        f = frames[aw].filter(pl.col("_day") < s)
        started = pl.col("_first") < s
        weeks_ = ((s - pl.col("_first")) // 7 + 1).clip(0, 12)
        return f.with_columns(
            pl.when(started).then(pl.col("_first")).otherwise(None).cast(pl.Date).alias("first_class_date"),
            pl.when(started).then((weeks_ * pl.col("_ratio")).round(0).cast(pl.Int64)).otherwise(0).alias("classes_attended"),
            pl.col("_consent").replace_strict({1: True, 0: False}, default=None, return_dtype=pl.Boolean).alias("consent_to_share"))

    snap_builders = {dfg: (dfg_snap, plan.weekly_snaps), hl: (hl_snap, plan.weekly_snaps),
                     aw: (aw_snap, plan.monthly_snaps)}
    for key, (builder, snaps) in snap_builders.items():
        ext = EXTRACTS[key]["fmt"]
        for S in snaps:
            typed = builder(S)
            landing.emit(key, typed, f"{key[1]}_{S:%Y%m%d}.{ext}",
                         i2d(int(frames[key]["_day"].min())) if frames[key].height else S,
                         S - timedelta(days=1), utc(S, ARRIVAL), snap_label=S.isoformat())
        delivered[key] = typed


def deliver_school(landing: Landing, ctx: X.Ctx, world: World, people_id: pl.DataFrame, spells: pl.DataFrame,
                   frames: dict[Key, pl.DataFrame], plan: Plan, delivered: dict[Key, pl.DataFrame]) -> None:
    """School attendance: termly snapshots, each pupil at the school of their ward and age."""
    rng = landing.rng
    for E in plan.termly_snaps:
        df, prim_urn, sec_urn, age31 = C.simulate_school(ctx, E)
        df = df.with_columns(pl.col("_term_no").alias("_tn"))
        t = attach(df, people_id, spells)
        t = apply_mess(rng(f"mess/school/{E}"), t, 0.0)
        t = finish_identifiers(t, EXTRACTS[SCHOOL], rng(f"address/school/{E}"), SCHOOL)
        wo = world.shard.ward_offset
        widx = t["ward_true"].str.slice(4).cast(pl.Int64).fill_null(1 + wo).to_numpy() - 1 - wo
        a31 = age31[t["_pid"].to_numpy()]
        urn = np.where(a31 <= 10, prim_urn[widx], sec_urn[widx // 3])
        t = t.with_columns(pl.Series("school_urn", urn.astype(str)),
                           X.as_date(t["_end"].to_numpy()).alias("_term_end"))
        t = t.with_columns(pl.concat_str([pl.col("upn_true"), pl.col("academic_year"), pl.col("term")], separator="|").alias("_key"))
        t = t.sort(["upn_true", "_tn"])
        landing.emit(SCHOOL, t, f"school_attendance_{E:%Y%m%d}.csv", date(E.year if E.month >= 9 else E.year - 1, 9, 1), E,
                     utc(E + timedelta(days=1), ARRIVAL))
        frames[SCHOOL] = t
        delivered[SCHOOL] = t


def deliver_opt_outs(landing: Landing, world: World, plan: Plan) -> np.ndarray:
    """The national data opt-out list: monthly full snapshots. Returns who is opted out in the latest."""
    ppl = world.people
    r = landing.rng("optout")
    NP = ppl.height
    m0 = plan.monthly_snaps[0]
    opted = r.random(NP) < 0.05
    opted &= ~ppl["is_canary"].to_numpy()
    opt_day = np.where(r.random(NP) < 0.9, d2i(m0) - r.integers(1, 2000, NP), d2i(m0) - 60 + r.integers(0, 90, NP))
    opt_day = np.where(opted, opt_day, FOREVER)
    for S in plan.monthly_snaps:
        sel = ppl.filter(pl.Series(opt_day < d2i(S))).select(
            "person_id", pl.col("nhs_number").alias("_key"), "nhs_number").sort("_key")
        landing.emit(OPT_OUTS, sel, f"opt_outs_{S:%Y%m%d}.csv", date(2018, 5, 25), S - timedelta(days=1), utc(S, ARRIVAL))
    return opt_day < d2i(plan.monthly_snaps[-1])
