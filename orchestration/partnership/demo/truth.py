"""What the demo writes besides the deliveries: the reference data agencies and analysts share,
and the planted ground truth (`demo_truth/`) that tests and benchmarks measure the product by."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

import orchestration.partnership.demo.extracts as X
from orchestration.partnership.demo.deliveries import SCHOOL, Landing, Plan
from orchestration.partnership.demo.identify import Key
from orchestration.partnership.demo.output import write_truth_parquet
from orchestration.partnership.demo.spec import EXTRACTS
from orchestration.partnership.demo.world import (
    FOREVER,
    World,
    age_on,
    d2i,
    i2d,
    population_estimates,
)


def write_reference(data_dir: Path, world: World, plan: Plan, summary: dict) -> tuple[Path, list[int]]:
    """Geography, the address gazetteer and population estimates. Returns the folder and the
    years estimated."""
    ref = data_dir / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    world.wards.write_csv(ref / "geography_wards.csv")
    world.lsoas.write_csv(ref / "geography_lsoas.csv")
    world.postcodes.sort("postcode").write_csv(ref / "geography_postcodes.csv")
    world.addresses.select("uprn", "address_line", "postcode", "lsoa_code", "ward_code").sort("uprn").write_csv(ref / "address_lookup.csv")
    years = [y for y in range(plan.hist_from.year, plan.as_of.year + 1) if date(y, 6, 30) <= plan.as_of]
    population_estimates(world, years).write_csv(ref / "population_estimates.csv")
    for p in sorted(ref.iterdir()):
        summary["files"].append(str(p))
    return ref, years


def _household_id(world: World) -> pl.Expr:
    hh = pl.col("hh") + world.shard.household_offset
    return pl.format("H{}", hh.cast(pl.Utf8).str.zfill(7)).alias("household_id")


def write_truth(truth: Path, world: World, landing: Landing, delivered: dict[Key, pl.DataFrame],
                opted_latest: np.ndarray, manifest_head: dict, years: list[int]) -> dict:
    """People, residence, households, every delivered row, events, deliveries, canaries and the
    manifest. Returns the manifest's counts."""
    truth.mkdir(parents=True, exist_ok=True)
    ppl = world.people
    people_t = ppl.select("person_id", "nhs_number", pl.col("upn").cast(pl.Utf8), "forename", "surname",
                          X.as_date(ppl["dob"].to_numpy()).alias("date_of_birth"), "sex",
                          pl.Series("opted_out", opted_latest), "is_canary", _household_id(world))
    write_truth_parquet(truth / "people.parquet", people_t)
    _write_residence(truth, world)
    _write_households(truth, world)
    records = pl.concat(landing.record_parts)
    write_truth_parquet(truth / "records.parquet", records)
    events = _events(delivered)
    write_truth_parquet(truth / "events.parquet", events)
    deliveries = pl.DataFrame(landing.delivery_rows).with_columns(
        pl.col("planned_arrival").dt.replace_time_zone(None).dt.replace_time_zone("UTC"))
    write_truth_parquet(truth / "deliveries.parquet", deliveries)
    _write_canaries(truth, world)

    as_of = landing.as_of
    summary = landing.summary
    viol_rows = int(records.filter(pl.col("violations").list.len() > 0).height)
    counts = {
        "people": ppl.height, "residents_at_as_of": int(((ppl["res_from"] <= d2i(as_of)) & (ppl["res_to"] >= d2i(as_of)) & (ppl["death"] > d2i(as_of))).sum()),
        "households": world.households.height, "addresses": world.addresses.height, "wards": world.wards.height,
        "lsoas": world.lsoas.height, "postcodes": world.postcodes.height, "records": records.height,
        "records_with_violations": viol_rows, "events": events.height,
        "falls_phof_admissions": int(events["is_falls_phof"].fill_null(False).sum()),
        "rows_per_extract": summary["rows"], "files": len(summary["files"]),
    }
    manifest = {**manifest_head, "population_years": years, "counts": counts}
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for p in sorted(truth.iterdir()):
        summary["files"].append(str(p))
    return counts


def _write_residence(truth: Path, world: World) -> None:
    res = world.spells.join(world.people.select("pid", "person_id", "hh"), on="pid").select(
        "person_id", "uprn", "postcode", "lsoa_code", "ward_code", _household_id(world),
        pl.when(pl.col("valid_from") <= -FOREVER + 1).then(None).otherwise(pl.col("valid_from")).cast(pl.Int64).alias("vf"),
        pl.when(pl.col("valid_to") >= FOREVER - 1).then(None).otherwise(pl.col("valid_to")).cast(pl.Int64).alias("vt"),
    )
    res = res.with_columns(
        pl.col("vf").cast(pl.Int32).cast(pl.Date).alias("valid_from"),
        pl.col("vt").cast(pl.Int32).cast(pl.Date).alias("valid_to")).drop("vf", "vt").select(
        "person_id", "uprn", "postcode", "lsoa_code", "ward_code", "valid_from", "valid_to", "household_id").sort(["person_id", "valid_from"], nulls_last=False)
    write_truth_parquet(truth / "residence.parquet", res)


def _write_households(truth: Path, world: World) -> None:
    hh = world.households
    home_addr = world.addresses.select(pl.col("addr_idx"), "uprn", "address_line", "postcode", "ward_code")
    hh_rows = []
    for col in ("home", "new_home"):
        hh_rows.append(hh.filter(pl.col(col) >= 0).select(pl.col("hh"), pl.col(col).alias("addr_idx")))
    hht = (pl.concat(hh_rows).join(home_addr, on="addr_idx").sort(["hh", "addr_idx"])
           .with_columns(_household_id(world))
           .select("household_id", "uprn", "address_line", "postcode", "ward_code"))
    write_truth_parquet(truth / "households.parquet", hht)


def _events(delivered: dict[Key, pl.DataFrame]) -> pl.DataFrame:
    """One row per delivered record that is an event, with what the indicators count it as."""
    event_parts: list[pl.DataFrame] = []
    for key, f in delivered.items():
        spec = EXTRACTS[key]
        if spec["event_type"] is None or f.height == 0:
            continue
        ed = pl.col(spec["event_date"])
        if key == SCHOOL:
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
            e = _admission_events(e, ev)
        else:
            e = _other_events(e, ev, key)
        event_parts.append(e.select(
            "person_id", "agency", "extract", "record_id", "event_date", "event_type", "episode_number",
            "admission_method", "primary_diagnosis", "external_cause", "is_falls_phof", "age_at_event",
            "ward_code_at_event", "is_fall", "detail"))
    return pl.concat(event_parts).sort(["agency", "extract", "event_date", "record_id"])


def _admission_events(e: pl.DataFrame, ev: pl.DataFrame) -> pl.DataFrame:
    """Emergency admissions, with the falls indicator's own test (injury, fall cause, emergency)."""
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
    return pl.concat([e, extra], how="horizontal").with_columns(
        (pl.col("_phof_base") & (pl.col("age_at_event") >= 65) & pl.col("ward_code_at_event").is_not_null()).alias("is_falls_phof")
    ).drop("_phof_base")


def _other_events(e: pl.DataFrame, ev: pl.DataFrame, key: Key) -> pl.DataFrame:
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
    elif key == SCHOOL:
        is_fall = pl.Series([False] * ev.height)
        detail = ev["term"]
    else:
        is_fall = pl.Series([False] * ev.height)
        detail = pl.Series([None] * ev.height, dtype=pl.Utf8)
    return e.with_columns(
        pl.lit(None, dtype=pl.Int64).alias("episode_number"), pl.lit(None, dtype=pl.Utf8).alias("admission_method"),
        pl.lit(None, dtype=pl.Utf8).alias("primary_diagnosis"), pl.lit(None, dtype=pl.Utf8).alias("external_cause"),
        is_fall.alias("is_fall"), detail.cast(pl.Utf8).alias("detail"), pl.lit(None, dtype=pl.Boolean).alias("is_falls_phof"))


def _write_canaries(truth: Path, world: World) -> None:
    """The canary people, with every postcode they lived at."""
    canary = world.people.filter(pl.col("is_canary"))
    can_pc = (world.spells.filter(pl.col("pid").is_in(canary["pid"].implode()))
              .group_by("pid").agg(pl.col("postcode").unique().sort()))
    can_pc = dict(zip(can_pc["pid"].to_list(), can_pc["postcode"].to_list()))
    canaries = [dict(person_id=r["person_id"], forename=r["forename"], surname=r["surname"],
                     nhs_number=r["nhs_number"], date_of_birth=i2d(r["dob"]).isoformat(), sex=r["sex"],
                     postcodes=can_pc.get(r["pid"], []))
                for r in canary.iter_rows(named=True)]
    (truth / "canaries.json").write_text(json.dumps(canaries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
