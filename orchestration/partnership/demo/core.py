"""generate(): simulate the Riverside partnership and write every agency's deliveries."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zlib
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

import orchestration.partnership.demo.extracts as X
from orchestration.partnership.demo.output import (
    apply_mess,
    plant_violations,
    to_strings,
    write_csv,
    write_parquet,
    write_truth_parquet,
    write_xlsx,
)
from orchestration.partnership.demo.presets import PRESETS
from orchestration.partnership.demo.spec import EXTRACTS
from orchestration.partnership.demo.world import (
    FOREVER,
    age_on,
    build_world,
    d2i,
    i2d,
    population_estimates,
)
from orchestration.partnership.warehouse.permissions import lock_down

ARRIVAL = time(1, 30)
LATE_ARRIVAL = time(7, 42)
SLA = time(6, 0)


def _years_back(d: date, n: int) -> date:
    try:
        return d.replace(year=d.year - n)
    except ValueError:  # 29 February
        return d.replace(year=d.year - n, day=28)


def _utc(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=timezone.utc)


def _rng_factory(preset, seed, as_of, violation_rate, nightly_days):
    h = hashlib.sha256(f"{preset}|{seed}|{as_of.isoformat()}|{violation_rate!r}|{nightly_days}".encode()).digest()
    master = [int.from_bytes(h[i:i + 4], "little") for i in range(0, 16, 4)]

    def rng(name: str) -> np.random.Generator:
        return np.random.default_rng(master + [zlib.crc32(name.encode())])
    return rng


# ----------------------------------------------------------------------------- identifiers

def _attach(frame: pl.DataFrame, people_id: pl.DataFrame, spells: pl.DataFrame) -> pl.DataFrame:
    f = frame.with_row_index("_row").with_columns(pl.col("_pid").cast(pl.Int64), pl.col("_day").cast(pl.Int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        f = f.sort("_day").join_asof(spells, left_on="_day", right_on="valid_from", by_left="_pid",
                                     by_right="pid", strategy="backward")
    f = f.join(people_id, left_on="_pid", right_on="pid", how="left").sort("_row").drop("_row")
    return f


def _finish_identifiers(f: pl.DataFrame, spec: dict) -> pl.DataFrame:
    sex = spec.get("sex")
    if sex == "nhs":
        sex_expr = pl.col("w_sex").replace_strict({"M": "1", "F": "2"}, default="9", return_dtype=pl.Utf8)
    elif sex == "mfu":
        sex_expr = pl.col("w_sex").fill_null("U")
    else:
        sex_expr = pl.col("w_sex").fill_null(pl.col("sex_true"))
    return f.with_columns(
        pl.col("w_nhs").alias("nhs_number"), pl.col("w_forename").alias("forename"),
        pl.col("w_surname").alias("surname"), pl.col("w_dob").alias("date_of_birth"),
        sex_expr.alias("sex"), pl.col("w_postcode").alias("postcode"), pl.col("uprn_true").alias("uprn"),
        pl.col("w_upn").alias("upn"))


# ----------------------------------------------------------------------------- generate

DEFAULT_AS_OF = date(2026, 11, 27)


def generate(data_dir: Path, preset: str = "small", seed: int = 42, as_of: date | None = DEFAULT_AS_OF,
             violation_rate: float | None = 0.02, nightly_days: int | None = 2) -> dict:
    """Simulate the partnership and write reference data, agency deliveries and ground truth.

    Deterministic for (preset, seed, as_of, violation_rate, nightly_days). Returns a summary.
    None for as_of / violation_rate / nightly_days means the default.
    """
    as_of = DEFAULT_AS_OF if as_of is None else as_of
    violation_rate = 0.02 if violation_rate is None else float(violation_rate)
    nightly_days = 2 if nightly_days is None else int(nightly_days)
    if not 0.0 <= violation_rate <= 0.5:
        raise ValueError("violation_rate must be between 0 and 0.5")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    if nightly_days < 1:
        raise ValueError("nightly_days must be >= 1")
    data_dir = Path(data_dir)
    lock_down()  # the demo's people are as identifiable as real ones: its files are the owner's alone
    rng = _rng_factory(preset, seed, as_of, violation_rate, nightly_days)
    P = PRESETS[preset]
    hist_from = _years_back(as_of, 2) + timedelta(days=1)
    sim_start = date(hist_from.year, 1, 1)
    world = build_world(rng("world"), P, sim_start, as_of)
    ctx = X.make_ctx(world, rng, gen_lo=d2i(hist_from) - 90, as_of=d2i(as_of))

    # ---- simulate
    falls = X.simulate_falls(ctx)
    adm, admitted_ae = X.simulate_admissions(ctx, falls)
    frames: dict[tuple[str, str], pl.DataFrame] = {}
    frames[("riverside_acute", "emergency_admissions")] = adm
    frames[("riverside_acute", "ae_attendances")] = X.simulate_ae(ctx, falls, admitted_ae)
    frames[("county_ambulance", "incidents")] = X.simulate_ambulance(ctx, falls)
    frames[("riverside_fire", "safe_and_well_visits")] = X.simulate_fire(ctx, falls)
    frames[("riverside_council", "housing_adaptations")] = X.simulate_dfg(ctx, falls)
    frames[("riverside_council", "homelessness_cases")] = X.simulate_homelessness(ctx)
    frames[("county_council", "adult_social_care_referrals")] = X.simulate_asc(ctx, falls)
    police, da_child = X.simulate_police(ctx)
    frames[("county_police", "incidents")] = police
    frames[("county_council", "children_social_care_referrals")] = X.simulate_csc(ctx, da_child)
    frames[("riverside_agewell", "falls_class_referrals")] = X.simulate_agewell(ctx, falls)

    # ---- identifiers (true) and addresses at the event date, then the agency's mess
    ppl = world.people
    people_id = ppl.select(
        "pid", "person_id", pl.col("nhs_number").alias("nhs_true"), pl.col("upn").cast(pl.Utf8).alias("upn_true"),
        pl.col("forename").alias("forename_true"), pl.col("surname").alias("surname_true"),
        X._d(ppl["dob"].to_numpy()).alias("date_of_birth_true"), pl.col("sex").alias("sex_true"), "is_canary")
    people_id = people_id.with_columns(pl.col("forename_true").alias("forename"), pl.col("surname_true").alias("surname"))
    spells = world.spells.select("pid", "valid_from", pl.col("uprn").alias("uprn_true"),
                                 pl.col("postcode").alias("postcode_true"), pl.col("lsoa_code").alias("lsoa_true"),
                                 pl.col("ward_code").alias("ward_true")).sort("valid_from")

    def prepare(key, frame):
        spec = EXTRACTS[key]
        f = _attach(frame, people_id, spells)
        f = apply_mess(rng("mess/" + "/".join(key)), f, spec["nhs_missing"])
        return _finish_identifiers(f, spec)

    for key in list(frames):
        frames[key] = prepare(key, frames[key])
    csc = ("county_council", "children_social_care_referrals")
    r = rng("csc_upn")
    frames[csc] = frames[csc].with_columns(
        pl.when(pl.Series(r.random(frames[csc].height) < 0.15)).then(None).otherwise(pl.col("upn")).alias("upn"))
    hl = ("riverside_council", "homelessness_cases")
    frames[hl] = frames[hl].with_columns(pl.when(pl.col("_blank_uprn")).then(None).otherwise(pl.col("uprn")).alias("uprn"))

    # ---- delivery plan
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
        for _, _, e in X.term_dates(ay):
            if e + timedelta(days=1) <= as_of:
                term_ends.append(e)
    termly_snaps = sorted(term_ends)[-2:]

    summary = {"preset": preset, "seed": seed, "as_of": as_of.isoformat(), "data_dir": str(data_dir),
               "files": [], "rows": {}}
    record_parts: list[pl.DataFrame] = []
    delivery_rows: list[dict] = []
    event_parts: list[pl.DataFrame] = []
    landing = data_dir / "landing"

    def emit(key, typed: pl.DataFrame, file_name: str, covers_from: date, covers_to: date,
             arrival: datetime, planted_late=False, snap_label=None):
        spec = EXTRACTS[key]
        agency, extract = key
        folder = landing / agency / extract
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name
        typed = typed.sort(spec["sort"]) if typed.height else typed
        s = to_strings(typed, spec["columns"], spec["types"], spec["date"], spec.get("dt"))
        s, tags = plant_violations(rng(f"viol/{agency}/{extract}/{file_name}"), s, typed, spec["viol"], spec["types"], spec["date"],
                                   spec.get("dt"), violation_rate, as_of)
        if spec["fmt"] == "csv":
            write_csv(path, s, spec["sep"], spec["encoding"], spec["bom"], spec["eol"])
        elif spec["fmt"] == "xlsx":
            write_xlsx(path, s, spec["types"], spec["title"].format(snap=snap_label),
                       datetime.combine(arrival.date(), time(0, 0)))
        else:
            write_parquet(path, s, spec["types"])
        ts = arrival.timestamp()
        os.utime(path, (ts, ts))
        if len(spec["key"]) == 1:
            rid = s[spec["key"][0]]
        else:
            rid = s.select(pl.concat_str([pl.col(c).fill_null("") for c in spec["key"]], separator="|"))[:, 0]
        record_parts.append(pl.DataFrame({
            "agency": [agency] * s.height, "extract": [extract] * s.height, "file_name": [file_name] * s.height,
            "row_number": np.arange(1, s.height + 1, dtype=np.int64), "record_id": rid.cast(pl.Utf8),
            "true_record_id": typed["_key"].cast(pl.Utf8) if typed.height else pl.Series([], dtype=pl.Utf8),
            "person_id": typed["person_id"] if typed.height else pl.Series([], dtype=pl.Utf8),
            "violations": pl.Series(tags, dtype=pl.List(pl.Utf8)),
        }))
        delivery_rows.append(dict(agency=agency, extract=extract, file_name=file_name, planned_arrival=arrival,
                                  covers_from=covers_from, covers_to=covers_to, rows=s.height, planted_late=planted_late))
        summary["files"].append(str(path))
        summary["rows"][f"{agency}/{extract}"] = summary["rows"].get(f"{agency}/{extract}", 0) + s.height

    def incremental(key, periods, hist_name):
        f = frames[key]
        spec = EXTRACTS[key]
        ext = spec["fmt"]
        lo, hi = d2i(hist_from), d2i(periods[0][0]) - 1
        delivered = []
        part = f.filter((pl.col("_rec") >= lo) & (pl.col("_rec") <= hi))
        emit(key, part, f"{key[1]}_history_{hist_from:%Y%m%d}_{i2d(hi):%Y%m%d}.{ext}", hist_from, i2d(hi),
             _utc(i2d(hi) + timedelta(days=1), ARRIVAL))
        delivered.append(part)
        for (a, b) in periods:
            part = f.filter((pl.col("_rec") >= d2i(a)) & (pl.col("_rec") <= d2i(b)))
            late = key == ("county_ambulance", "incidents") and b == last_night
            arr = _utc(b + timedelta(days=1), LATE_ARRIVAL if late else ARRIVAL)
            emit(key, part, f"{key[1]}_{b:%Y%m%d}.{ext}", a, b, arr, planted_late=late)
            delivered.append(part)
        return pl.concat(delivered)

    delivered: dict = {}
    for key, spec in EXTRACTS.items():
        if spec["cadence"] == "nightly":
            delivered[key] = incremental(key, [(d, d) for d in nights], None)
        elif spec["cadence"] == "weekly":
            delivered[key] = incremental(key, weeks, None)

    # weekly snapshots (council xlsx)
    def dfg_snap(S: date):
        s = d2i(S)
        f = frames[("riverside_council", "housing_adaptations")].filter(pl.col("_day") < s)
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
        f = frames[("riverside_agewell", "falls_class_referrals")].filter(pl.col("_day") < s)
        started = pl.col("_first") < s
        weeks_ = ((s - pl.col("_first")) // 7 + 1).clip(0, 12)
        return f.with_columns(
            pl.when(started).then(pl.col("_first")).otherwise(None).cast(pl.Date).alias("first_class_date"),
            pl.when(started).then((weeks_ * pl.col("_ratio")).round(0).cast(pl.Int64)).otherwise(0).alias("classes_attended"),
            pl.col("_consent").replace_strict({1: True, 0: False}, default=None, return_dtype=pl.Boolean).alias("consent_to_share"))

    snap_builders = {("riverside_council", "housing_adaptations"): (dfg_snap, weekly_snaps),
                     hl: (hl_snap, weekly_snaps),
                     ("riverside_agewell", "falls_class_referrals"): (aw_snap, monthly_snaps)}
    for key, (builder, snaps) in snap_builders.items():
        ext = EXTRACTS[key]["fmt"]
        for S in snaps:
            typed = builder(S)
            emit(key, typed, f"{key[1]}_{S:%Y%m%d}.{ext}", i2d(int(frames[key]["_day"].min())) if frames[key].height else S,
                 S - timedelta(days=1), _utc(S, ARRIVAL), snap_label=S.isoformat())
        delivered[key] = typed

    # school attendance: termly snapshots
    sch = ("county_council", "school_attendance")
    nw = world.wards.height
    for E in termly_snaps:
        df, prim_urn, sec_urn, age31 = X.simulate_school(ctx, E)
        df = df.with_columns(pl.col("_term_no").alias("_tn"))
        t = _attach(df, people_id, spells)
        t = apply_mess(rng(f"mess/school/{E}"), t, 0.0)
        t = _finish_identifiers(t, EXTRACTS[sch])
        widx = t["ward_true"].str.slice(4).cast(pl.Int64).fill_null(1).to_numpy() - 1
        a31 = age31[t["_pid"].to_numpy()]
        urn = np.where(a31 <= 10, prim_urn[widx], sec_urn[widx // 3])
        t = t.with_columns(pl.Series("school_urn", urn.astype(str)),
                           X._d(t["_end"].to_numpy()).alias("_term_end"))
        t = t.with_columns(pl.concat_str([pl.col("upn_true"), pl.col("academic_year"), pl.col("term")], separator="|").alias("_key"))
        t = t.sort(["upn_true", "_tn"])
        emit(sch, t, f"school_attendance_{E:%Y%m%d}.csv", date(E.year if E.month >= 9 else E.year - 1, 9, 1), E,
             _utc(E + timedelta(days=1), ARRIVAL))
        frames[sch] = t
        delivered[sch] = t

    # opt-outs: monthly full snapshots
    r = rng("optout")
    NP = ppl.height
    opted = r.random(NP) < 0.05
    opted &= ~ppl["is_canary"].to_numpy()
    opt_day = np.where(r.random(NP) < 0.9, d2i(m0) - r.integers(1, 2000, NP), d2i(m0) - 60 + r.integers(0, 90, NP))
    opt_day = np.where(opted, opt_day, FOREVER)
    oo = ("nhs_optout", "opt_outs")
    for S in monthly_snaps:
        sel = ppl.filter(pl.Series(opt_day < d2i(S))).select(
            "person_id", pl.col("nhs_number").alias("_key"), "nhs_number").sort("_key")
        emit(oo, sel, f"opt_outs_{S:%Y%m%d}.csv", date(2018, 5, 25), S - timedelta(days=1), _utc(S, ARRIVAL))
    opted_latest = opt_day < d2i(monthly_snaps[-1])

    # ---- reference data
    ref = data_dir / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    world.wards.write_csv(ref / "geography_wards.csv")
    world.lsoas.write_csv(ref / "geography_lsoas.csv")
    world.postcodes.sort("postcode").write_csv(ref / "geography_postcodes.csv")
    world.addresses.select("uprn", "address_line", "postcode", "lsoa_code", "ward_code").sort("uprn").write_csv(ref / "address_lookup.csv")
    years = [y for y in range(hist_from.year, as_of.year + 1) if date(y, 6, 30) <= as_of]
    population_estimates(world, years).write_csv(ref / "population_estimates.csv")
    for p in sorted(ref.iterdir()):
        summary["files"].append(str(p))

    # ---- ground truth
    truth = data_dir / "demo_truth"
    truth.mkdir(parents=True, exist_ok=True)
    people_t = ppl.select("person_id", "nhs_number", pl.col("upn").cast(pl.Utf8), "forename", "surname",
                          X._d(ppl["dob"].to_numpy()).alias("date_of_birth"), "sex",
                          pl.Series("opted_out", opted_latest), "is_canary",
                          pl.format("H{}", pl.col("hh").cast(pl.Utf8).str.zfill(7)).alias("household_id"))
    write_truth_parquet(truth / "people.parquet", people_t)
    res = world.spells.join(ppl.select("pid", "person_id", "hh"), on="pid").select(
        "person_id", "uprn", "postcode", "lsoa_code", "ward_code",
        pl.format("H{}", pl.col("hh").cast(pl.Utf8).str.zfill(7)).alias("household_id"),
        pl.when(pl.col("valid_from") <= -FOREVER + 1).then(None).otherwise(pl.col("valid_from")).cast(pl.Int64).alias("vf"),
        pl.when(pl.col("valid_to") >= FOREVER - 1).then(None).otherwise(pl.col("valid_to")).cast(pl.Int64).alias("vt"),
    )
    res = res.with_columns(
        pl.col("vf").cast(pl.Int32).cast(pl.Date).alias("valid_from"),
        pl.col("vt").cast(pl.Int32).cast(pl.Date).alias("valid_to")).drop("vf", "vt").select(
        "person_id", "uprn", "postcode", "lsoa_code", "ward_code", "valid_from", "valid_to", "household_id").sort(["person_id", "valid_from"], nulls_last=False)
    write_truth_parquet(truth / "residence.parquet", res)
    hh = world.households
    home_addr = world.addresses.select(pl.col("addr_idx"), "uprn", "address_line", "postcode", "ward_code")
    hh_rows = []
    for col in ("home", "new_home"):
        hh_rows.append(hh.filter(pl.col(col) >= 0).select(pl.col("hh"), pl.col(col).alias("addr_idx")))
    hht = (pl.concat(hh_rows).join(home_addr, on="addr_idx").sort(["hh", "addr_idx"])
           .with_columns(pl.format("H{}", pl.col("hh").cast(pl.Utf8).str.zfill(7)).alias("household_id"))
           .select("household_id", "uprn", "address_line", "postcode", "ward_code"))
    write_truth_parquet(truth / "households.parquet", hht)
    records = pl.concat(record_parts)
    write_truth_parquet(truth / "records.parquet", records)

    # events
    for key, f in delivered.items():
        spec = EXTRACTS[key]
        if spec["event_type"] is None or f.height == 0:
            continue
        ed = pl.col(spec["event_date"])
        if key == sch:
            ed = pl.col("_term_end")
        ev = f.with_columns(ed.cast(pl.Date).alias("event_date"))
        age = age_on(ev["date_of_birth_true"].cast(pl.Int64).to_numpy(), ev["event_date"].cast(pl.Int64).to_numpy())
        cols = dict(
            person_id=ev["person_id"], agency=[key[0]] * ev.height, extract=[key[1]] * ev.height,
            record_id=ev["_key"].cast(pl.Utf8), event_date=ev["event_date"],
            event_type=[spec["event_type"]] * ev.height)
        e = pl.DataFrame(cols).with_columns(
            pl.Series("age_at_event", age.astype(np.int64)), ev["ward_true"].alias("ward_code_at_event"))
        if key == ("riverside_acute", "emergency_admissions"):
            sec = ["secondary_diagnosis_1", "secondary_diagnosis_2", "secondary_diagnosis_3", "secondary_diagnosis_4"]
            wfall = pl.any_horizontal([pl.col(c).str.contains(r"^W(0\d|1\d)") for c in sec])
            injury = pl.col("primary_diagnosis").str.contains(r"^(S\d\d|T([0-8]\d|9[0-8]))")
            emerg = pl.col("admission_method").is_in(["21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28"])
            extra = ev.select(
                pl.col("episode_number"), pl.col("admission_method"), pl.col("primary_diagnosis"),
                pl.when(pl.col("_cause") == "").then(None).otherwise(pl.col("_cause")).alias("external_cause"),
                (injury & wfall.fill_null(False) & emerg & (pl.col("episode_number") == 1)).alias("_phof_base"),
                wfall.fill_null(False).alias("is_fall"),
                pl.col("_kind").alias("detail"))
            e = pl.concat([e, extra], how="horizontal").with_columns(
                (pl.col("_phof_base") & (pl.col("age_at_event") >= 65) & pl.col("ward_code_at_event").is_not_null()).alias("is_falls_phof")
            ).drop("_phof_base")
        else:
            if key == ("riverside_acute", "ae_attendances"):
                is_fall = ev["secondary_diagnosis"].fill_null("").str.contains(r"^W(0\d|1\d)")
                detail = ev["disposal"]
            elif key == ("county_ambulance", "incidents"):
                is_fall = ev["chief_complaint"] == "FALL"
                detail = ev["chief_complaint"]
            elif key == ("county_police", "incidents"):
                is_fall = pl.Series([False] * ev.height)
                detail = ev["occurrence_type"] + ":" + ev["person_role"]
            elif key == ("riverside_fire", "safe_and_well_visits"):
                is_fall = pl.Series([False] * ev.height)
                detail = ev["referral_source"]
            elif key == sch:
                is_fall = pl.Series([False] * ev.height)
                detail = ev["term"]
            else:
                is_fall = pl.Series([False] * ev.height)
                detail = pl.Series([None] * ev.height, dtype=pl.Utf8)
            e = e.with_columns(
                pl.lit(None, dtype=pl.Int64).alias("episode_number"), pl.lit(None, dtype=pl.Utf8).alias("admission_method"),
                pl.lit(None, dtype=pl.Utf8).alias("primary_diagnosis"), pl.lit(None, dtype=pl.Utf8).alias("external_cause"),
                is_fall.alias("is_fall"), detail.cast(pl.Utf8).alias("detail"), pl.lit(None, dtype=pl.Boolean).alias("is_falls_phof"))
        event_parts.append(e.select(
            "person_id", "agency", "extract", "record_id", "event_date", "event_type", "episode_number",
            "admission_method", "primary_diagnosis", "external_cause", "is_falls_phof", "age_at_event",
            "ward_code_at_event", "is_fall", "detail"))
    events = pl.concat(event_parts).sort(["agency", "extract", "event_date", "record_id"])
    write_truth_parquet(truth / "events.parquet", events)
    deliveries = pl.DataFrame(delivery_rows).with_columns(
        pl.col("planned_arrival").dt.replace_time_zone(None).dt.replace_time_zone("UTC"))
    write_truth_parquet(truth / "deliveries.parquet", deliveries)

    canary = ppl.filter(pl.col("is_canary"))
    can_pc = (world.spells.filter(pl.col("pid").is_in(canary["pid"].implode()))
              .group_by("pid").agg(pl.col("postcode").unique().sort()))
    can_pc = dict(zip(can_pc["pid"].to_list(), can_pc["postcode"].to_list()))
    canaries = [dict(person_id=r["person_id"], forename=r["forename"], surname=r["surname"],
                     nhs_number=r["nhs_number"], date_of_birth=i2d(r["dob"]).isoformat(), sex=r["sex"],
                     postcodes=can_pc.get(r["pid"], []))
                for r in canary.iter_rows(named=True)]
    (truth / "canaries.json").write_text(json.dumps(canaries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    viol_rows = int(records.filter(pl.col("violations").list.len() > 0).height)
    counts = {
        "people": ppl.height, "residents_at_as_of": int(((ppl["res_from"] <= d2i(as_of)) & (ppl["res_to"] >= d2i(as_of)) & (ppl["death"] > d2i(as_of))).sum()),
        "households": hh.height, "addresses": world.addresses.height, "wards": world.wards.height,
        "lsoas": world.lsoas.height, "postcodes": world.postcodes.height, "records": records.height,
        "records_with_violations": viol_rows, "events": events.height,
        "falls_phof_admissions": int(events["is_falls_phof"].fill_null(False).sum()),
        "rows_per_extract": summary["rows"], "files": len(summary["files"]),
    }
    manifest = {"preset": preset, "seed": seed, "as_of": as_of.isoformat(), "violation_rate": violation_rate,
                "nightly_days": nightly_days, "history_from": hist_from.isoformat(), "history_to": hist_to.isoformat(),
                "population_years": years, "counts": counts}
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for p in sorted(truth.iterdir()):
        summary["files"].append(str(p))
    summary["counts"] = counts
    summary["landing_dir"] = str(landing)
    summary["reference_dir"] = str(ref)
    summary["truth_dir"] = str(truth)
    return summary
