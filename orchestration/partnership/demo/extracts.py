"""Event simulation: one typed polars frame per extract (clean truth, before identifier mess).
Here the shared helpers, falls, hospital, ambulance, fire and age well; the councils' and
police extracts are in `extracts_council`.

Every frame has the private columns `_pid` (true person index), `_day` (the day whose
address and age apply), `_rec` (the day the record becomes deliverable) and `_key`
(record key). Output columns are typed (dates as pl.Date, datetimes as pl.Datetime).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import polars as pl

import orchestration.partnership.demo.codes as K
from orchestration.partnership.demo.world import FOREVER, World, age_on

DAY = 86400


@dataclass
class Ctx:
    world: World
    rng: Callable[[str], np.random.Generator]
    gen_lo: int  # first day events are simulated
    last_day: int  # last day events may be recorded (as_of - 1)
    as_of: int
    P: dict  # numpy arrays of people attributes

    @property
    def shard(self):
        return self.world.shard


def make_ctx(world: World, rng_factory, gen_lo: int, as_of: int) -> Ctx:
    p = world.people
    P = {c: p[c].to_numpy() for c in ["pid", "dob", "death", "frailty", "troubled", "is_canary",
                                         "kind", "res_from", "res_to", "sex", "hh", "is_adult", "htype", "showcase"]}
    return Ctx(world, rng_factory, gen_lo, as_of - 1, as_of, P)


def exposure(ctx: Ctx, resident_only: bool):
    P = ctx.P
    lo = np.maximum(ctx.gen_lo, P["dob"])
    hi = np.minimum(ctx.last_day, P["death"] - 1)
    if resident_only:
        lo = np.maximum(lo, P["res_from"])
        hi = np.minimum(hi, P["res_to"])
    return lo, hi


def draw(rng, rate, lo, hi):
    span = np.clip(hi - lo + 1, 0, None)
    n = rng.poisson(np.clip(rate, 0, None) * span / 365.25)
    idx = np.repeat(np.arange(len(rate)), n)
    day = lo[idx] + np.floor(rng.random(len(idx)) * span[idx]).astype(np.int64)
    return idx, day


def age_mid(ctx):
    return (((ctx.gen_lo + ctx.last_day) // 2) - ctx.P["dob"]) / 365.25


def choice(rng, items, n, p=None):
    arr = np.array(items, dtype=object)
    if p is not None:
        p = np.asarray(p, float)
        p = p / p.sum()
    return arr[rng.choice(len(arr), n, p=p)]


def make_ids(rng, prefix, n, width, offset=0, part=(0, 1)):
    """n distinct ids; `part` (index, count) interleaves the parts of a sharded population."""
    nums = (rng.permutation(max(n * 3, 1000))[:n] + offset) * part[1] + part[0]
    return np.array([f"{prefix}{x:0{width}d}" for x in nums], dtype=object)


def resident_on(ctx, pid, day):
    P = ctx.P
    return (P["res_from"][pid] <= day) & (P["res_to"][pid] >= day) & (P["death"][pid] > day)


def as_datetime(sec) -> pl.Series:
    return pl.Series((np.asarray(sec, dtype="int64") * 1_000_000).astype("datetime64[us]"))


def as_date(days) -> pl.Series:
    return pl.Series(np.asarray(days, dtype="int64").astype("datetime64[D]")).cast(pl.Date)


# ----------------------------------------------------------------------------- falls

def simulate_falls(ctx: Ctx) -> dict:
    rng = ctx.rng("falls")
    P = ctx.P
    a = age_mid(ctx)
    adm_rate = np.where(a >= 65, 0.0077 * np.exp(0.07 * (np.clip(a, 65, 105) - 65)),
                        np.where(a >= 18, 0.0007, 0.0009))
    p_admit = np.where(a >= 65, 0.4, 0.15)
    rate = adm_rate / p_admit * P["frailty"]
    rate = np.where(P["kind"] == 3, rate * 0.15, rate)  # visitors: only the falls while here
    lo, hi = exposure(ctx, resident_only=False)
    idx, day = draw(rng, rate, lo, hi)
    # canaries: one guaranteed fall each, everything follows
    can = np.nonzero(P["is_canary"] | P["showcase"])[0]
    can_day = ctx.last_day - 300 + 29 * np.arange(len(can))
    pid = np.concatenate([idx, can])
    day = np.concatenate([day, can_day])
    n = len(pid)
    forced = np.zeros(n, bool)
    forced[len(idx):] = True
    sec = day * DAY + rng.integers(6 * 3600, 23 * 3600, n)
    age = age_on(P["dob"][pid], day)
    old = age >= 65
    admitted = forced | (rng.random(n) < p_admit[pid])
    amb = forced | (rng.random(n) < np.where(old, 0.7, 0.3))
    ae = admitted & (forced | (rng.random(n) < 0.88)) | (~admitted & (rng.random(n) < 0.55))
    return dict(pid=pid, day=day, sec=sec, age=age, admitted=admitted, amb=amb, ae=ae, forced=forced)


# ----------------------------------------------------------------------------- acute

def simulate_admissions(ctx: Ctx, falls: dict):
    rng = ctx.rng("admissions")
    P = ctx.P
    a = age_mid(ctx)
    lo, hi = exposure(ctx, resident_only=False)
    vis = np.where(P["kind"] == 3, 0.1, 1.0)
    parts = []  # list of dicts of spell-level arrays

    def add(pid, adm_sec, method, primary, cause, cause_pos, los, kind):
        parts.append(dict(pid=pid, adm_sec=adm_sec, method=method, primary=primary, cause=cause,
                          cause_pos=cause_pos, los=los, kind=np.full(len(pid), kind, dtype=object)))

    # (a) fall admissions
    f = falls
    m = f["admitted"]
    pid = f["pid"][m]
    ae_arr = f["sec"][m] + rng.integers(1800, 7200, m.sum())
    adm_sec = ae_arr + rng.integers(2 * 3600, 8 * 3600, m.sum())
    nf = len(pid)
    method = choice(rng, K.EMERGENCY_METHODS, nf, K.EMERGENCY_METHODS_W)
    elective_nm = (rng.random(nf) < 0.03) & ~f["forced"][m]  # near-miss: a fall coded elective
    method[elective_nm] = choice(rng, K.ELECTIVE_METHODS, int(elective_nm.sum()))
    primary = choice(rng, K.INJURY_FALL, nf, K.INJURY_FALL_W)
    cause = choice(rng, K.FALL_CAUSES, nf, K.FALL_CAUSES_W)
    cause_pos = rng.choice([1, 2, 3, 4], nf, p=[0.5, 0.25, 0.15, 0.1])
    los = np.ceil(rng.gamma(1.5, 7.0, nf)).astype(int)
    add(pid, adm_sec, method, primary, cause, cause_pos, los, "fall")
    fall_ae_arr = ae_arr  # A&E arrival of admitted falls, aligned with parts[0]
    # (b) injury without a W00-W19 cause
    idx, day = draw(rng, np.full(len(a), 0.003) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), choice(rng, K.EMERGENCY_METHODS, n, K.EMERGENCY_METHODS_W),
        choice(rng, K.INJURY_FALL, n, K.INJURY_FALL_W), choice(rng, K.NON_FALL_CAUSES, n),
        rng.choice([1, 2], n), np.ceil(rng.gamma(1.2, 4.0, n)).astype(int), "injury_no_fall_cause")
    # (c) a W-code but a non-injury primary (older people)
    idx, day = draw(rng, np.where(a >= 60, 0.003, 0.0) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), choice(rng, K.EMERGENCY_METHODS, n, K.EMERGENCY_METHODS_W),
        choice(rng, K.NON_INJURY_WITH_W, n), choice(rng, K.FALL_CAUSES, n, K.FALL_CAUSES_W),
        rng.choice([1, 2, 3], n), np.ceil(rng.gamma(1.5, 4.0, n)).astype(int), "w_code_non_injury")
    # (d) other emergency admissions
    r = (0.035 + 0.22 * np.clip(a / 90, 0, 1.2) ** 3 + np.where(a < 5, 0.05, 0)) * vis
    idx, day = draw(rng, r, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), choice(rng, K.EMERGENCY_METHODS, n, K.EMERGENCY_METHODS_W),
        choice(rng, K.OTHER_EMERG, n), np.full(n, "", dtype=object), np.zeros(n, int),
        np.floor(rng.gamma(1.2, 3.5, n)).astype(int), "other_emergency")
    # (e) elective, (f) maternity, (g) other methods
    idx, day = draw(rng, np.where(a >= 18, 0.02, 0.004) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(7 * 3600, 12 * 3600, n), choice(rng, K.ELECTIVE_METHODS, n),
        choice(rng, K.ELECTIVE, n), np.full(n, "", dtype=object), np.zeros(n, int),
        rng.integers(0, 4, n), "elective")
    fem = (P["sex"] == "F") & (a >= 18) & (a < 45)
    idx, day = draw(rng, np.where(fem, 0.04, 0.0) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), choice(rng, K.MATERNITY_METHODS, n),
        choice(rng, K.MATERNITY, n), np.full(n, "", dtype=object), np.zeros(n, int),
        rng.integers(0, 4, n), "maternity")
    idx, day = draw(rng, np.full(len(a), 0.002) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), choice(rng, K.OTHER_METHODS, n),
        choice(rng, K.OTHER_METHOD, n), np.full(n, "", dtype=object), np.zeros(n, int),
        rng.integers(0, 10, n), "other_method")

    S = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ns = len(S["pid"])
    adm_day = S["adm_sec"] // DAY
    dis_day = adm_day + S["los"]
    spell_id = make_ids(rng, "SP", ns, 8, 10_000_000, ctx.shard.ids)
    # secondaries: comorbidities (more for older), cause code at cause_pos
    age_adm = age_on(ctx.P["dob"][S["pid"]], adm_day)
    sec = np.full((ns, 4), "", dtype=object)
    n_com = rng.binomial(4, np.clip(age_adm / 110, 0.05, 0.8))
    for j in range(4):
        fill = j < n_com
        sec[fill, j] = choice(rng, K.COMORBID, int(fill.sum()))
    has_cause = S["cause_pos"] > 0
    rows = np.nonzero(has_cause)[0]
    sec[rows, S["cause_pos"][rows] - 1] = S["cause"][rows]
    # episodes
    n_ep = np.where(S["los"] >= 2, rng.choice([1, 2, 3], ns, p=[0.8, 0.15, 0.05]), 1)
    e_sp = np.repeat(np.arange(ns), n_ep)
    e_no = np.arange(len(e_sp)) - np.repeat(np.cumsum(n_ep) - n_ep, n_ep) + 1
    frac = np.where(e_no == 1, 0.0, np.where(e_no == 2, rng.uniform(0.2, 0.6, len(e_sp)), rng.uniform(0.65, 0.95, len(e_sp))))
    ep_start = adm_day[e_sp] + np.floor(frac * S["los"][e_sp]).astype(int)
    ep_primary = S["primary"][e_sp].copy()
    later = e_no > 1
    swap = later & (rng.random(len(e_sp)) < 0.5)
    ep_primary[swap] = choice(rng, ["Z50.9", "R26.8", "Z74.0", "F05.9"], int(swap.sum()))
    ep_sec = sec[e_sp].copy()
    nE = len(e_sp)
    episode_id = make_ids(rng, "EP", nE, 9, 100_000_000, ctx.shard.ids)
    adm_frame = pl.DataFrame({
        "_pid": S["pid"][e_sp], "_day": adm_day[e_sp], "_rec": dis_day[e_sp], "_key": episode_id,
        "_kind": S["kind"][e_sp], "_cause": S["cause"][e_sp],
        "episode_id": episode_id, "spell_id": spell_id[e_sp], "episode_number": e_no.astype(np.int64),
    }).with_columns(
        as_date(adm_day[e_sp]).alias("admission_date"), as_date(ep_start).alias("episode_start_date"),
        as_date(dis_day[e_sp]).alias("discharge_date"),
        pl.Series("admission_method", S["method"][e_sp], dtype=pl.Utf8),
        pl.Series("primary_diagnosis", ep_primary, dtype=pl.Utf8),
        *[pl.Series(f"secondary_diagnosis_{j + 1}", ep_sec[:, j], dtype=pl.Utf8) for j in range(4)],
    )
    # A&E attendances that preceded emergency admissions
    emerg = np.array([m.startswith("2") for m in S["method"]])
    nfall = len(parts[0]["pid"])
    ae_pre = emerg & (rng.random(ns) < np.where(np.arange(ns) < nfall, 1.0, 0.7))
    ae_pre[:nfall] &= falls["ae"][falls["admitted"]]
    arr = S["adm_sec"] - rng.integers(2 * 3600, 8 * 3600, ns)
    arr[:nfall] = fall_ae_arr
    w = np.nonzero(ae_pre)[0]
    ae_diag = S["primary"][w]
    ae_sec = np.where(S["cause_pos"][w] > 0, S["cause"][w], "").astype(object)
    admitted_ae = dict(pid=S["pid"][w], arr=arr[w], dep=S["adm_sec"][w] - rng.integers(0, 1800, len(w)),
                       diag=ae_diag, sec=ae_sec, disposal=np.full(len(w), "ADMITTED", dtype=object))
    return adm_frame, admitted_ae


def simulate_ae(ctx: Ctx, falls: dict, admitted_ae: dict) -> pl.DataFrame:
    rng = ctx.rng("ae")
    P = ctx.P
    a = age_mid(ctx)
    lo, hi = exposure(ctx, resident_only=False)
    vis = np.where(P["kind"] == 3, 0.15, 1.0)
    parts = [admitted_ae]
    # non-admitted falls seen in A&E
    m = falls["ae"] & ~falls["admitted"]
    n = int(m.sum())
    arr = falls["sec"][m] + rng.integers(1800, 7200, n)
    parts.append(dict(pid=falls["pid"][m], arr=arr, dep=arr + rng.integers(3600, 6 * 3600, n),
                      diag=choice(rng, ["S00.9", "S60.0", "T14.9", "S52.5", "S01.8", "S93.4", "S09.9"], n),
                      sec=choice(rng, K.FALL_CAUSES, n, K.FALL_CAUSES_W),
                      disposal=choice(rng, ["DISCHARGED", "REFERRED", "LEFT"], n, [0.75, 0.2, 0.05])))
    r = (0.22 + 0.35 * np.clip(a / 90, 0, 1.2) ** 3 + np.where(a < 5, 0.25, 0)) * vis
    idx, day = draw(rng, r, lo, hi)
    n = len(idx)
    arr = day * DAY + rng.integers(0, DAY, n)
    parts.append(dict(pid=idx, arr=arr, dep=arr + rng.integers(1800, 9 * 3600, n),
                      diag=choice(rng, K.AE_OTHER_DIAG, n),
                      sec=np.where(rng.random(n) < 0.3, choice(rng, K.COMORBID, n), "").astype(object),
                      disposal=choice(rng, ["DISCHARGED", "REFERRED", "LEFT", "DIED"], n, [0.78, 0.14, 0.079, 0.001])))
    S = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = len(S["pid"])
    att = make_ids(rng, "AE", n, 9, 200_000_000, ctx.shard.ids)
    return pl.DataFrame({
        "_pid": S["pid"], "_day": S["arr"] // DAY, "_rec": S["dep"] // DAY, "_key": att,
        "attendance_id": att,
    }).with_columns(as_datetime(S["arr"]).alias("arrival_datetime"), as_datetime(S["dep"]).alias("departure_datetime"),
                    pl.Series("primary_diagnosis", S["diag"], dtype=pl.Utf8),
                    pl.Series("secondary_diagnosis", S["sec"], dtype=pl.Utf8),
                    pl.Series("disposal", S["disposal"], dtype=pl.Utf8))


def simulate_ambulance(ctx: Ctx, falls: dict) -> pl.DataFrame:
    rng = ctx.rng("ambulance")
    P = ctx.P
    a = age_mid(ctx)
    lo, hi = exposure(ctx, resident_only=False)
    vis = np.where(P["kind"] == 3, 0.1, 1.0)
    m = falls["amb"]
    n1 = int(m.sum())
    f_conv = np.where(falls["ae"][m] | falls["admitted"][m], "Y", "N").astype(object)
    r = (0.05 + 0.3 * np.clip(a / 90, 0, 1.2) ** 3) * vis
    idx, day = draw(rng, r, lo, hi)
    n2 = len(idx)
    pid = np.concatenate([falls["pid"][m], idx])
    sec = np.concatenate([falls["sec"][m], day * DAY + rng.integers(0, DAY, n2)])
    cc = np.concatenate([np.full(n1, "FALL", dtype=object), choice(rng, K.AMB_OTHER, n2, K.AMB_OTHER_W)])
    conv = np.concatenate([f_conv, np.where(rng.random(n2) < 0.65, "Y", "N").astype(object)])
    n = len(pid)
    inc = make_ids(rng, "INC", n, 9, 300_000_000, ctx.shard.ids)
    return pl.DataFrame({"_pid": pid, "_day": sec // DAY, "_rec": sec // DAY, "_key": inc,
                         "incident_id": inc}).with_columns(
        as_datetime(sec).alias("incident_datetime"), pl.Series("chief_complaint", cc, dtype=pl.Utf8),
        pl.Series("conveyed", conv, dtype=pl.Utf8))


# ----------------------------------------------------------------------------- fire, age well

def followups(ctx, rng, falls, prob, lo_days, hi_days, old_only=True):
    ok = rng.random(len(falls["pid"])) < prob
    if old_only:
        ok &= falls["age"] >= 65
    ok |= falls["forced"]
    pid = falls["pid"][ok]
    day = falls["day"][ok] + rng.integers(lo_days, hi_days + 1, ok.sum())
    amb = falls["amb"][ok]
    keep = resident_on(ctx, pid, day) & (day <= ctx.last_day)
    return pid[keep], day[keep], amb[keep]


def simulate_fire(ctx: Ctx, falls: dict) -> pl.DataFrame:
    rng = ctx.rng("fire")
    P = ctx.P
    a = age_mid(ctx)
    pid1, day1, amb1 = followups(ctx, rng, falls, 0.32, 3, 28)
    src1 = np.where(amb1 & (rng.random(len(pid1)) < 0.7), "AMBULANCE", "AGE_WELL").astype(object)
    pid2, day2, _ = followups(ctx, rng, falls, 0.05, 29, 75)
    src2 = choice(rng, ["AMBULANCE", "AGE_WELL", "GP"], len(pid2))
    lo, hi = exposure(ctx, resident_only=True)
    idx, day = draw(rng, np.where(a >= 65, 0.035, np.where(a >= 18, 0.004, 0)), lo, hi)
    src3 = choice(rng, ["SELF", "GP", "SOCIAL_CARE", "OTHER", "AGE_WELL"], len(idx), [0.35, 0.2, 0.2, 0.2, 0.05])
    pid = np.concatenate([pid1, pid2, idx]).astype(np.int64)
    day = np.concatenate([day1, day2, day])
    src = np.concatenate([src1, src2, src3])
    n = len(pid)
    fall_related = np.concatenate([np.ones(len(pid1) + len(pid2), bool), np.zeros(len(idx), bool)])
    risk = np.where(rng.random(n) < np.where(fall_related, 0.8, 0.25), "Y", "N").astype(object)
    alarm = np.where(rng.random(n) < 0.35, "Y", "N").astype(object)
    vid = make_ids(rng, "SWV", n, 7, 1_000_000, ctx.shard.ids)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": day, "_key": vid, "visit_id": vid}).with_columns(
        as_date(day).alias("visit_date"), pl.Series("referral_source", src, dtype=pl.Utf8),
        pl.Series("falls_risk_identified", risk, dtype=pl.Utf8), pl.Series("smoke_alarm_fitted", alarm, dtype=pl.Utf8))


def simulate_agewell(ctx: Ctx, falls: dict) -> pl.DataFrame:
    """Case-level (lifecycle) frame; snapshots are cut later."""
    rng = ctx.rng("agewell")
    a = age_mid(ctx)
    pid1, day1, amb1 = followups(ctx, rng, falls, 0.22, 2, 28)
    src1 = choice(rng, ["AMBULANCE", "HOSPITAL", "GP", "FIRE"], len(pid1), [0.35, 0.3, 0.2, 0.15])
    lo, hi = exposure(ctx, resident_only=True)
    idx, day = draw(rng, np.where(a >= 65, 0.006, 0.0), lo, hi)
    src2 = choice(rng, ["GP", "SELF", "FIRE"], len(idx), [0.5, 0.35, 0.15])
    pid = np.concatenate([pid1, idx]).astype(np.int64)
    day = np.concatenate([day1, day])
    src = np.concatenate([src1, src2])
    n = len(pid)
    starts = rng.random(n) < 0.8
    first = np.where(starts, day + rng.integers(7, 42, n), FOREVER)
    attend_ratio = rng.uniform(0.4, 1.0, n)
    u = rng.random(n)
    consent = np.where(u < 0.85, 1, np.where(u < 0.95, 0, -1))
    rid = make_ids(rng, "AW", n, 6, 100_000, ctx.shard.ids)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": day, "_key": rid, "_first": first,
                         "_ratio": attend_ratio, "_consent": consent, "referral_id": rid}).with_columns(
        as_date(day).alias("referral_date"), pl.Series("referral_source", src, dtype=pl.Utf8))
