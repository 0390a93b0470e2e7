"""generate(): simulate the Riverside partnership and write every agency's deliveries, the
reference data and the ground truth, in named steps."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

import orchestration.partnership.demo.extracts as X
import orchestration.partnership.demo.extracts_council as C
from orchestration.partnership.demo.deliveries import (
    Landing,
    deliver_incremental,
    deliver_opt_outs,
    deliver_school,
    deliver_snapshots,
    plan_deliveries,
)
from orchestration.partnership.demo.identify import Key, identify, true_identities
from orchestration.partnership.demo.presets import PRESETS, WHOLE, Preset, Shard
from orchestration.partnership.demo.shards import SHARD_PARTS, merge_parts
from orchestration.partnership.demo.truth import write_reference, write_truth
from orchestration.partnership.demo.world import build_world, d2i
from orchestration.partnership.warehouse.permissions import lock_down

DEFAULT_AS_OF = date(2026, 11, 27)


def _years_back(d: date, n: int) -> date:
    try:
        return d.replace(year=d.year - n)
    except ValueError:  # 29 February
        return d.replace(year=d.year - n, day=28)


def _rng_factory(preset, seed, as_of, violation_rate, nightly_days):
    """Named random streams: each part of the simulation draws from its own, so adding one
    part leaves every other part's draws unchanged."""
    h = hashlib.sha256(f"{preset}|{seed}|{as_of.isoformat()}|{violation_rate!r}|{nightly_days}".encode()).digest()
    master = [int.from_bytes(h[i:i + 4], "little") for i in range(0, 16, 4)]

    def rng(name: str) -> np.random.Generator:
        return np.random.default_rng(master + [zlib.crc32(name.encode())])
    return rng


def _simulate(ctx: X.Ctx) -> dict[Key, pl.DataFrame]:
    """Every agency's events, as clean typed frames (the falls drive several agencies' records)."""
    falls = X.simulate_falls(ctx)
    adm, admitted_ae = X.simulate_admissions(ctx, falls)
    frames: dict[Key, pl.DataFrame] = {}
    frames[("riverside_acute", "emergency_admissions")] = adm
    frames[("riverside_acute", "ae_attendances")] = X.simulate_ae(ctx, falls, admitted_ae)
    frames[("county_ambulance", "incidents")] = X.simulate_ambulance(ctx, falls)
    frames[("riverside_fire", "safe_and_well_visits")] = X.simulate_fire(ctx, falls)
    frames[("riverside_council", "housing_adaptations")] = C.simulate_dfg(ctx, falls)
    frames[("riverside_council", "homelessness_cases")] = C.simulate_homelessness(ctx)
    frames[("county_council", "adult_social_care_referrals")] = C.simulate_asc(ctx, falls)
    police, da_child = C.simulate_police(ctx)
    frames[("county_police", "incidents")] = police
    frames[("county_council", "children_social_care_referrals")] = C.simulate_csc(ctx, da_child)
    frames[("riverside_agewell", "falls_class_referrals")] = X.simulate_agewell(ctx, falls)
    return frames


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
    p = PRESETS[preset]
    hist_from = _years_back(as_of, 2) + timedelta(days=1)
    plan = plan_deliveries(as_of, hist_from, nightly_days)
    summary = {"preset": preset, "seed": seed, "as_of": as_of.isoformat(), "data_dir": str(data_dir),
               "files": [], "rows": {}}
    manifest_head = {"preset": preset, "seed": seed, "as_of": as_of.isoformat(), "violation_rate": violation_rate,
                     "nightly_days": nightly_days, "history_from": hist_from.isoformat(),
                     "history_to": plan.hist_to.isoformat()}
    rng = _rng_factory(preset, seed, as_of, violation_rate, nightly_days)
    landing = Landing(data_dir, rng, violation_rate, as_of, summary, sharded=p.shards > 1)
    if p.shards == 1:
        summary["counts"] = _part(data_dir, p, WHOLE, rng, landing, plan, hist_from, as_of, manifest_head)
    else:
        summary["counts"] = _sharded(data_dir, p, (preset, seed, as_of, violation_rate, nightly_days),
                                     landing, plan, hist_from, as_of, manifest_head)
    summary["landing_dir"] = str(landing.folder)
    summary["reference_dir"] = str(data_dir / "reference")
    summary["truth_dir"] = str(data_dir / "demo_truth")
    return summary


def _part(out: Path, p: Preset, shard: Shard, rng, landing: Landing, plan, hist_from: date, as_of: date,
          manifest_head: dict) -> dict:
    """Simulate one population (a whole preset, or one shard of one) and write its deliveries into
    the landing folder, its reference data and truth into `out`. Returns the truth's counts."""
    world = build_world(rng("world"), p, date(hist_from.year, 1, 1), as_of, shard)
    ctx = X.make_ctx(world, rng, gen_lo=d2i(hist_from) - 90, as_of=d2i(as_of))

    frames = _simulate(ctx)
    people_id, spells = true_identities(world)
    identify(frames, people_id, spells, rng)

    landing.rng = rng
    delivered = deliver_incremental(landing, frames, plan)
    deliver_snapshots(landing, frames, plan, delivered)
    deliver_school(landing, ctx, world, people_id, spells, frames, plan, delivered)
    opted_latest = deliver_opt_outs(landing, world, plan)

    ref, years = write_reference(out, world, plan, landing.summary)
    return write_truth(out / "demo_truth", world, landing, delivered, opted_latest, manifest_head, years)


def _sharded(data_dir: Path, p: Preset, key: tuple, landing: Landing, plan, hist_from: date, as_of: date,
             manifest_head: dict) -> dict:
    """A large population in `p.shards` parts, one after another: each part's deliveries are
    appended to the landing files, its reference data and truth written beside, then merged."""
    part, shard, parts = p.part(), WHOLE, []
    preset, seed, as_of_, violation_rate, nightly_days = key
    for index in range(p.shards):
        shard = replace(shard, index=index, count=p.shards)
        rng = _rng_factory(f"{preset}/{index}", seed, as_of_, violation_rate, nightly_days)
        out = data_dir / SHARD_PARTS / f"{index}"
        counts = _part(out, part, shard, rng, landing, plan, hist_from, as_of, manifest_head)
        landing.record_parts.clear()
        landing.delivery_rows.clear()
        parts.append(out)
        shard = replace(shard, ward_offset=shard.ward_offset + counts["wards"],
                        lsoa_offset=shard.lsoa_offset + counts["lsoas"],
                        person_offset=shard.person_offset + counts["people"],
                        household_offset=shard.household_offset + counts["households"])
    landing.finish()
    return merge_parts(data_dir, parts, landing.summary)
