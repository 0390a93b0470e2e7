"""Event simulation: one typed polars frame per extract (clean truth, before identifier mess).

Every frame has the private columns `_pid` (true person index), `_day` (the day whose
address and age apply), `_rec` (the day the record becomes deliverable) and `_key`
(record key). Output columns are typed (dates as pl.Date, datetimes as pl.Datetime).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

import numpy as np
import polars as pl

import orchestration.partnership.demo.codes as K
from orchestration.partnership.demo.world import FOREVER, World, age_on, d2i

DAY = 86400


@dataclass
class Ctx:
    world: World
    rng: Callable[[str], np.random.Generator]
    gen_lo: int  # first day events are simulated
    last_day: int  # last day events may be recorded (as_of - 1)
    as_of: int
    P: dict  # numpy arrays of people attributes


def make_ctx(world: World, rng_factory, gen_lo: int, as_of: int) -> Ctx:
    p = world.people
    P = {c: p[c].to_numpy() for c in ["pid", "dob", "death", "frailty", "troubled", "is_canary",
                                         "kind", "res_from", "res_to", "sex", "hh", "is_adult", "htype", "showcase"]}
    return Ctx(world, rng_factory, gen_lo, as_of - 1, as_of, P)


def _exposure(ctx: Ctx, resident_only: bool):
    P = ctx.P
    lo = np.maximum(ctx.gen_lo, P["dob"])
    hi = np.minimum(ctx.last_day, P["death"] - 1)
    if resident_only:
        lo = np.maximum(lo, P["res_from"])
        hi = np.minimum(hi, P["res_to"])
    return lo, hi


def _draw(rng, rate, lo, hi):
    span = np.clip(hi - lo + 1, 0, None)
    n = rng.poisson(np.clip(rate, 0, None) * span / 365.25)
    idx = np.repeat(np.arange(len(rate)), n)
    day = lo[idx] + np.floor(rng.random(len(idx)) * span[idx]).astype(np.int64)
    return idx, day


def _age_mid(ctx):
    return (((ctx.gen_lo + ctx.last_day) // 2) - ctx.P["dob"]) / 365.25


def _choice(rng, items, n, p=None):
    arr = np.array(items, dtype=object)
    if p is not None:
        p = np.asarray(p, float)
        p = p / p.sum()
    return arr[rng.choice(len(arr), n, p=p)]


def _ids(rng, prefix, n, width, offset=0):
    nums = rng.permutation(max(n * 3, 1000))[:n] + offset
    return np.array([f"{prefix}{x:0{width}d}" for x in nums], dtype=object)


def _resident_on(ctx, pid, day):
    P = ctx.P
    return (P["res_from"][pid] <= day) & (P["res_to"][pid] >= day) & (P["death"][pid] > day)


def _dt(sec) -> pl.Series:
    return pl.Series((np.asarray(sec, dtype="int64") * 1_000_000).astype("datetime64[us]"))


def _d(days) -> pl.Series:
    return pl.Series(np.asarray(days, dtype="int64").astype("datetime64[D]")).cast(pl.Date)


# ----------------------------------------------------------------------------- falls

def simulate_falls(ctx: Ctx) -> dict:
    rng = ctx.rng("falls")
    P = ctx.P
    a = _age_mid(ctx)
    adm_rate = np.where(a >= 65, 0.0077 * np.exp(0.07 * (np.clip(a, 65, 105) - 65)),
                        np.where(a >= 18, 0.0007, 0.0009))
    p_admit = np.where(a >= 65, 0.4, 0.15)
    rate = adm_rate / p_admit * P["frailty"]
    rate = np.where(P["kind"] == 3, rate * 0.15, rate)  # visitors: only the falls while here
    lo, hi = _exposure(ctx, resident_only=False)
    idx, day = _draw(rng, rate, lo, hi)
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
    a = _age_mid(ctx)
    lo, hi = _exposure(ctx, resident_only=False)
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
    method = _choice(rng, K.EMERGENCY_METHODS, nf, K.EMERGENCY_METHODS_W)
    elective_nm = (rng.random(nf) < 0.03) & ~f["forced"][m]  # near-miss: a fall coded elective
    method[elective_nm] = _choice(rng, K.ELECTIVE_METHODS, int(elective_nm.sum()))
    primary = _choice(rng, K.INJURY_FALL, nf, K.INJURY_FALL_W)
    cause = _choice(rng, K.FALL_CAUSES, nf, K.FALL_CAUSES_W)
    cause_pos = rng.choice([1, 2, 3, 4], nf, p=[0.5, 0.25, 0.15, 0.1])
    los = np.ceil(rng.gamma(1.5, 7.0, nf)).astype(int)
    add(pid, adm_sec, method, primary, cause, cause_pos, los, "fall")
    fall_ae_arr = ae_arr  # A&E arrival of admitted falls, aligned with parts[0]
    # (b) injury without a W00-W19 cause
    idx, day = _draw(rng, np.full(len(a), 0.003) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), _choice(rng, K.EMERGENCY_METHODS, n, K.EMERGENCY_METHODS_W),
        _choice(rng, K.INJURY_FALL, n, K.INJURY_FALL_W), _choice(rng, K.NON_FALL_CAUSES, n),
        rng.choice([1, 2], n), np.ceil(rng.gamma(1.2, 4.0, n)).astype(int), "injury_no_fall_cause")
    # (c) a W-code but a non-injury primary (older people)
    idx, day = _draw(rng, np.where(a >= 60, 0.003, 0.0) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), _choice(rng, K.EMERGENCY_METHODS, n, K.EMERGENCY_METHODS_W),
        _choice(rng, K.NON_INJURY_WITH_W, n), _choice(rng, K.FALL_CAUSES, n, K.FALL_CAUSES_W),
        rng.choice([1, 2, 3], n), np.ceil(rng.gamma(1.5, 4.0, n)).astype(int), "w_code_non_injury")
    # (d) other emergency admissions
    r = (0.035 + 0.22 * np.clip(a / 90, 0, 1.2) ** 3 + np.where(a < 5, 0.05, 0)) * vis
    idx, day = _draw(rng, r, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), _choice(rng, K.EMERGENCY_METHODS, n, K.EMERGENCY_METHODS_W),
        _choice(rng, K.OTHER_EMERG, n), np.full(n, "", dtype=object), np.zeros(n, int),
        np.floor(rng.gamma(1.2, 3.5, n)).astype(int), "other_emergency")
    # (e) elective, (f) maternity, (g) other methods
    idx, day = _draw(rng, np.where(a >= 18, 0.02, 0.004) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(7 * 3600, 12 * 3600, n), _choice(rng, K.ELECTIVE_METHODS, n),
        _choice(rng, K.ELECTIVE, n), np.full(n, "", dtype=object), np.zeros(n, int),
        rng.integers(0, 4, n), "elective")
    fem = (P["sex"] == "F") & (a >= 18) & (a < 45)
    idx, day = _draw(rng, np.where(fem, 0.04, 0.0) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), _choice(rng, K.MATERNITY_METHODS, n),
        _choice(rng, K.MATERNITY, n), np.full(n, "", dtype=object), np.zeros(n, int),
        rng.integers(0, 4, n), "maternity")
    idx, day = _draw(rng, np.full(len(a), 0.002) * vis, lo, hi)
    n = len(idx)
    add(idx, day * DAY + rng.integers(0, DAY, n), _choice(rng, K.OTHER_METHODS, n),
        _choice(rng, K.OTHER_METHOD, n), np.full(n, "", dtype=object), np.zeros(n, int),
        rng.integers(0, 10, n), "other_method")

    S = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ns = len(S["pid"])
    adm_day = S["adm_sec"] // DAY
    dis_day = adm_day + S["los"]
    spell_id = _ids(rng, "SP", ns, 8, 10_000_000)
    # secondaries: comorbidities (more for older), cause code at cause_pos
    age_adm = age_on(ctx.P["dob"][S["pid"]], adm_day)
    sec = np.full((ns, 4), "", dtype=object)
    n_com = rng.binomial(4, np.clip(age_adm / 110, 0.05, 0.8))
    for j in range(4):
        fill = j < n_com
        sec[fill, j] = _choice(rng, K.COMORBID, int(fill.sum()))
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
    ep_primary[swap] = _choice(rng, ["Z50.9", "R26.8", "Z74.0", "F05.9"], int(swap.sum()))
    ep_sec = sec[e_sp].copy()
    nE = len(e_sp)
    episode_id = _ids(rng, "EP", nE, 9, 100_000_000)
    adm_frame = pl.DataFrame({
        "_pid": S["pid"][e_sp], "_day": adm_day[e_sp], "_rec": dis_day[e_sp], "_key": episode_id,
        "_kind": S["kind"][e_sp], "_cause": S["cause"][e_sp],
        "episode_id": episode_id, "spell_id": spell_id[e_sp], "episode_number": e_no.astype(np.int64),
    }).with_columns(
        _d(adm_day[e_sp]).alias("admission_date"), _d(ep_start).alias("episode_start_date"),
        _d(dis_day[e_sp]).alias("discharge_date"),
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
    a = _age_mid(ctx)
    lo, hi = _exposure(ctx, resident_only=False)
    vis = np.where(P["kind"] == 3, 0.15, 1.0)
    parts = [admitted_ae]
    # non-admitted falls seen in A&E
    m = falls["ae"] & ~falls["admitted"]
    n = int(m.sum())
    arr = falls["sec"][m] + rng.integers(1800, 7200, n)
    parts.append(dict(pid=falls["pid"][m], arr=arr, dep=arr + rng.integers(3600, 6 * 3600, n),
                      diag=_choice(rng, ["S00.9", "S60.0", "T14.9", "S52.5", "S01.8", "S93.4", "S09.9"], n),
                      sec=_choice(rng, K.FALL_CAUSES, n, K.FALL_CAUSES_W),
                      disposal=_choice(rng, ["DISCHARGED", "REFERRED", "LEFT"], n, [0.75, 0.2, 0.05])))
    r = (0.22 + 0.35 * np.clip(a / 90, 0, 1.2) ** 3 + np.where(a < 5, 0.25, 0)) * vis
    idx, day = _draw(rng, r, lo, hi)
    n = len(idx)
    arr = day * DAY + rng.integers(0, DAY, n)
    parts.append(dict(pid=idx, arr=arr, dep=arr + rng.integers(1800, 9 * 3600, n),
                      diag=_choice(rng, K.AE_OTHER_DIAG, n),
                      sec=np.where(rng.random(n) < 0.3, _choice(rng, K.COMORBID, n), "").astype(object),
                      disposal=_choice(rng, ["DISCHARGED", "REFERRED", "LEFT", "DIED"], n, [0.78, 0.14, 0.079, 0.001])))
    S = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = len(S["pid"])
    att = _ids(rng, "AE", n, 9, 200_000_000)
    return pl.DataFrame({
        "_pid": S["pid"], "_day": S["arr"] // DAY, "_rec": S["dep"] // DAY, "_key": att,
        "attendance_id": att,
    }).with_columns(_dt(S["arr"]).alias("arrival_datetime"), _dt(S["dep"]).alias("departure_datetime"),
                    pl.Series("primary_diagnosis", S["diag"], dtype=pl.Utf8),
                    pl.Series("secondary_diagnosis", S["sec"], dtype=pl.Utf8),
                    pl.Series("disposal", S["disposal"], dtype=pl.Utf8))


def simulate_ambulance(ctx: Ctx, falls: dict) -> pl.DataFrame:
    rng = ctx.rng("ambulance")
    P = ctx.P
    a = _age_mid(ctx)
    lo, hi = _exposure(ctx, resident_only=False)
    vis = np.where(P["kind"] == 3, 0.1, 1.0)
    m = falls["amb"]
    n1 = int(m.sum())
    f_conv = np.where(falls["ae"][m] | falls["admitted"][m], "Y", "N").astype(object)
    r = (0.05 + 0.3 * np.clip(a / 90, 0, 1.2) ** 3) * vis
    idx, day = _draw(rng, r, lo, hi)
    n2 = len(idx)
    pid = np.concatenate([falls["pid"][m], idx])
    sec = np.concatenate([falls["sec"][m], day * DAY + rng.integers(0, DAY, n2)])
    cc = np.concatenate([np.full(n1, "FALL", dtype=object), _choice(rng, K.AMB_OTHER, n2, K.AMB_OTHER_W)])
    conv = np.concatenate([f_conv, np.where(rng.random(n2) < 0.65, "Y", "N").astype(object)])
    n = len(pid)
    inc = _ids(rng, "INC", n, 9, 300_000_000)
    return pl.DataFrame({"_pid": pid, "_day": sec // DAY, "_rec": sec // DAY, "_key": inc,
                         "incident_id": inc}).with_columns(
        _dt(sec).alias("incident_datetime"), pl.Series("chief_complaint", cc, dtype=pl.Utf8),
        pl.Series("conveyed", conv, dtype=pl.Utf8))


# ----------------------------------------------------------------------------- fire, age well

def _followups(ctx, rng, falls, prob, lo_days, hi_days, old_only=True):
    ok = rng.random(len(falls["pid"])) < prob
    if old_only:
        ok &= falls["age"] >= 65
    ok |= falls["forced"]
    pid = falls["pid"][ok]
    day = falls["day"][ok] + rng.integers(lo_days, hi_days + 1, ok.sum())
    amb = falls["amb"][ok]
    keep = _resident_on(ctx, pid, day) & (day <= ctx.last_day)
    return pid[keep], day[keep], amb[keep]


def simulate_fire(ctx: Ctx, falls: dict) -> pl.DataFrame:
    rng = ctx.rng("fire")
    P = ctx.P
    a = _age_mid(ctx)
    pid1, day1, amb1 = _followups(ctx, rng, falls, 0.32, 3, 28)
    src1 = np.where(amb1 & (rng.random(len(pid1)) < 0.7), "AMBULANCE", "AGE_WELL").astype(object)
    pid2, day2, _ = _followups(ctx, rng, falls, 0.05, 29, 75)
    src2 = _choice(rng, ["AMBULANCE", "AGE_WELL", "GP"], len(pid2))
    lo, hi = _exposure(ctx, resident_only=True)
    idx, day = _draw(rng, np.where(a >= 65, 0.035, np.where(a >= 18, 0.004, 0)), lo, hi)
    src3 = _choice(rng, ["SELF", "GP", "SOCIAL_CARE", "OTHER", "AGE_WELL"], len(idx), [0.35, 0.2, 0.2, 0.2, 0.05])
    pid = np.concatenate([pid1, pid2, idx]).astype(np.int64)
    day = np.concatenate([day1, day2, day])
    src = np.concatenate([src1, src2, src3])
    n = len(pid)
    fall_related = np.concatenate([np.ones(len(pid1) + len(pid2), bool), np.zeros(len(idx), bool)])
    risk = np.where(rng.random(n) < np.where(fall_related, 0.8, 0.25), "Y", "N").astype(object)
    alarm = np.where(rng.random(n) < 0.35, "Y", "N").astype(object)
    vid = _ids(rng, "SWV", n, 7, 1_000_000)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": day, "_key": vid, "visit_id": vid}).with_columns(
        _d(day).alias("visit_date"), pl.Series("referral_source", src, dtype=pl.Utf8),
        pl.Series("falls_risk_identified", risk, dtype=pl.Utf8), pl.Series("smoke_alarm_fitted", alarm, dtype=pl.Utf8))


def simulate_agewell(ctx: Ctx, falls: dict) -> pl.DataFrame:
    """Case-level (lifecycle) frame; snapshots are cut later."""
    rng = ctx.rng("agewell")
    a = _age_mid(ctx)
    pid1, day1, amb1 = _followups(ctx, rng, falls, 0.22, 2, 28)
    src1 = _choice(rng, ["AMBULANCE", "HOSPITAL", "GP", "FIRE"], len(pid1), [0.35, 0.3, 0.2, 0.15])
    lo, hi = _exposure(ctx, resident_only=True)
    idx, day = _draw(rng, np.where(a >= 65, 0.006, 0.0), lo, hi)
    src2 = _choice(rng, ["GP", "SELF", "FIRE"], len(idx), [0.5, 0.35, 0.15])
    pid = np.concatenate([pid1, idx]).astype(np.int64)
    day = np.concatenate([day1, day])
    src = np.concatenate([src1, src2])
    n = len(pid)
    starts = rng.random(n) < 0.8
    first = np.where(starts, day + rng.integers(7, 42, n), FOREVER)
    attend_ratio = rng.uniform(0.4, 1.0, n)
    u = rng.random(n)
    consent = np.where(u < 0.85, 1, np.where(u < 0.95, 0, -1))
    rid = _ids(rng, "AW", n, 6, 100_000)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": day, "_key": rid, "_first": first,
                         "_ratio": attend_ratio, "_consent": consent, "referral_id": rid}).with_columns(
        _d(day).alias("referral_date"), pl.Series("referral_source", src, dtype=pl.Utf8))


# ----------------------------------------------------------------------------- council

def simulate_dfg(ctx: Ctx, falls: dict) -> pl.DataFrame:
    rng = ctx.rng("dfg")
    a = _age_mid(ctx)
    pid1, day1, _ = _followups(ctx, rng, falls, 0.06, 10, 90)
    lo, hi = _exposure(ctx, resident_only=True)
    # the full snapshot holds all cases to date: long-standing residents have older cases too
    P = ctx.P
    early = np.maximum(ctx.gen_lo - 500, np.maximum(P["res_from"], P["dob"]))
    lo = np.where(P["res_from"] <= ctx.gen_lo, early, lo)
    idx, day = _draw(rng, np.where(a >= 65, 0.007, np.where(a >= 18, 0.0012, 0.0008)), lo, hi)
    pid = np.concatenate([pid1, idx]).astype(np.int64)
    day = np.concatenate([day1, day])
    n = len(pid)
    approved = rng.random(n) < 0.85
    appr = np.where(approved, day + rng.integers(14, 120, n), FOREVER)
    done = approved & (rng.random(n) < 0.92)
    comp = np.where(done, appr + np.ceil(rng.gamma(2.0, 45, n)).astype(int), FOREVER)
    typ = _choice(rng, ["STAIRLIFT", "LEVEL_ACCESS_SHOWER", "RAMP", "HOIST", "EXTENSION", "OTHER"], n,
                  [0.3, 0.35, 0.1, 0.07, 0.05, 0.13])
    base = {"STAIRLIFT": 3500, "LEVEL_ACCESS_SHOWER": 7000, "RAMP": 2500, "HOIST": 4000, "EXTENSION": 28000, "OTHER": 1500}
    amt = np.round(np.array([base[t] for t in typ]) * rng.uniform(0.6, 1.5, n), 2)
    ref = _ids(rng, "DFG/", n, 6, 10_000)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": day, "_key": ref, "_appr": appr, "_comp": comp,
                         "case_ref": ref}).with_columns(
        _d(day).alias("referral_date"), pl.Series("grant_amount", amt, dtype=pl.Float64),
        pl.Series("adaptation_type", typ, dtype=pl.Utf8))


def simulate_homelessness(ctx: Ctx) -> pl.DataFrame:
    rng = ctx.rng("homeless")
    P = ctx.P
    w = ctx.world
    hhs = w.households
    H = hhs.height
    kids = np.bincount(P["hh"][~P["is_adult"]], minlength=H)
    adults_mask = P["is_adult"] & (P["kind"] != 3)
    # lead applicant: the youngest adult of the household (per household, deterministic)
    order = np.lexsort((-P["dob"], P["hh"]))
    lead = np.full(H, -1)
    ordered_adults = order[adults_mask[order]]
    hh_of = P["hh"][ordered_adults]
    firsts = np.unique(hh_of, return_index=True)
    lead[firsts[0]] = ordered_adults[firsts[1]]
    has = lead >= 0
    troubled = hhs["troubled"].to_numpy()
    rate = np.where(troubled, 0.18, 0.004) * has
    lo, hi = _exposure(ctx, resident_only=True)
    lp = np.where(has, lead, 0)
    lo_h = np.where(has, lo[lp] - 400, 0)
    hi_h = np.where(has, hi[lp], -1)
    hidx, day = _draw(rng, rate, lo_h, hi_h)
    pid = lead[hidx]
    keep = _resident_on(ctx, pid, day)
    # allow approaches before the simulated window for residents of long standing
    keep |= (day < ctx.gen_lo) & (P["res_from"][pid] <= day) & (P["death"][pid] > day)
    hidx, day, pid = hidx[keep], day[keep], pid[keep]
    n = len(pid)
    ht = hhs["htype"].to_numpy()[hidx]
    nk = kids[hidx]
    htype = np.select([nk > 0, np.isin(ht, [1, 3]), np.isin(ht, [0, 2])], ["FAMILY_WITH_CHILDREN", "COUPLE", "SINGLE"], "OTHER").astype(object)
    duty = _choice(rng, ["PREVENTION", "RELIEF", "MAIN"], n, [0.55, 0.35, 0.10])
    close = day + np.ceil(rng.gamma(1.5, 90, n)).astype(int)
    blank_uprn = rng.random(n) < 0.2
    ref = _ids(rng, "HL", n, 6, 100_000)
    return pl.DataFrame({"_pid": pid.astype(np.int64), "_day": day, "_rec": day, "_key": ref, "_close": close,
                         "_blank_uprn": blank_uprn, "case_ref": ref}).with_columns(
        _d(day).alias("approach_date"), pl.Series("duty_type", duty, dtype=pl.Utf8),
        pl.Series("household_type", htype, dtype=pl.Utf8),
        pl.Series("children_in_household", nk.astype(np.int64)))


# ----------------------------------------------------------------------------- county council

def simulate_asc(ctx: Ctx, falls: dict) -> pl.DataFrame:
    rng = ctx.rng("asc")
    a = _age_mid(ctx)
    P = ctx.P
    m = falls["admitted"]
    sub = {k: v[m] for k, v in falls.items()}
    pid1, day1, _ = _followups(ctx, rng, sub, 0.25, 1, 20)
    src1 = np.full(len(pid1), "HOSPITAL", dtype=object)
    lo, hi = _exposure(ctx, resident_only=True)
    idx, day = _draw(rng, np.where(a >= 65, 0.06 + 0.04 * (a >= 80), np.where(a >= 18, 0.008 + 0.05 * P["troubled"], 0)), lo, hi)
    src2 = _choice(rng, ["HOSPITAL", "GP", "SELF", "FAMILY", "POLICE", "OTHER"], len(idx), [0.25, 0.25, 0.15, 0.2, 0.05, 0.1])
    pid = np.concatenate([pid1, idx]).astype(np.int64)
    day = np.concatenate([day1, day])
    src = np.concatenate([src1, src2])
    n = len(pid)
    ref_sec = day * DAY + rng.integers(8 * 3600, 18 * 3600, n)
    dec_sec = ref_sec + np.ceil(rng.gamma(1.2, 4.0, n) * DAY).astype(np.int64) + 3600
    age = age_on(P["dob"][pid], day)
    reason = np.where(age >= 65, _choice(rng, ["PHYSICAL_SUPPORT", "MEMORY_COGNITION", "SENSORY_SUPPORT", "SOCIAL_SUPPORT", "MENTAL_HEALTH"], n, [0.6, 0.2, 0.05, 0.1, 0.05]),
                      _choice(rng, ["PHYSICAL_SUPPORT", "LEARNING_DISABILITY", "MENTAL_HEALTH", "SOCIAL_SUPPORT", "SENSORY_SUPPORT"], n, [0.3, 0.2, 0.3, 0.15, 0.05]))
    out = _choice(rng, ["ASSESSMENT", "INFORMATION_ADVICE", "NFA", "SIGNPOSTED"], n, [0.5, 0.2, 0.15, 0.15])
    rid = _ids(rng, "ASC", n, 7, 1_000_000)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": dec_sec // DAY, "_key": rid, "referral_id": rid}).with_columns(
        _dt(ref_sec).alias("referral_datetime"), pl.Series("referral_source", src, dtype=pl.Utf8),
        pl.Series("primary_support_reason", reason, dtype=pl.Utf8), _dt(dec_sec).alias("decision_datetime"),
        pl.Series("outcome", out, dtype=pl.Utf8))


def simulate_police(ctx: Ctx) -> pl.DataFrame:
    rng = ctx.rng("police")
    P = ctx.P
    a = _age_mid(ctx)
    lo, hi = _exposure(ctx, resident_only=True)
    tr = P["troubled"]
    NP = len(a)
    rows_occ, rows_pid, rows_role = [], [], []
    occ_sec_list, occ_type_list = [], []
    n_occ = 0

    def new_occ(sec, typ):
        nonlocal n_occ
        ids = np.arange(n_occ, n_occ + len(sec))
        n_occ += len(sec)
        occ_sec_list.append(sec)
        occ_type_list.append(np.full(len(sec), typ, dtype=object))
        return ids

    def add_rows(occ, pid, role):
        rows_occ.append(occ); rows_pid.append(pid.astype(np.int64)); rows_role.append(np.full(len(occ), role, dtype=object))

    # household adult pairs for domestic abuse
    order = np.lexsort((P["dob"], P["hh"]))
    adults = order[P["is_adult"][order] & (P["kind"][order] != 3)]
    hh_a = P["hh"][adults]
    first_i = np.unique(hh_a, return_index=True)
    a1 = adults[first_i[1]]
    second_pos = first_i[1] + 1
    ok = (second_pos < len(adults))
    ok[ok] &= hh_a[np.minimum(second_pos[ok], len(adults) - 1)] == first_i[0][ok]
    a1, a2 = a1[ok], adults[second_pos[ok]]
    kids_order = order[~P["is_adult"][order]]
    hh_k = P["hh"][kids_order]
    kfirst = np.unique(hh_k, return_index=True)
    kid_of_hh = np.full(ctx.world.households.height, -1)
    kid_of_hh[kfirst[0]] = kids_order[kfirst[1]]
    # DA: anchor on a1's exposure
    rate = np.where(tr[a1], 0.6, 0.005)
    i, day = _draw(rng, rate, lo[a1], np.minimum(hi[a1], hi[a2]))
    keep = day >= lo[a2[i]]
    i, day = i[keep], day[keep]
    sec = day * DAY + rng.integers(0, DAY, len(i))
    occ = new_occ(sec, "DOMESTIC_ABUSE")
    p1, p2 = a1[i], a2[i]
    victim = np.where((P["sex"][p2] == "F") | (rng.random(len(i)) < 0.25), p2, p1)
    offender = np.where(victim == p2, p1, p2)
    add_rows(occ, victim, "VICTIM")
    add_rows(occ, offender, "OFFENDER")
    k = kid_of_hh[P["hh"][p1]]
    wit = (k >= 0) & (rng.random(len(i)) < 0.4)
    wit[wit] &= (P["dob"][k[wit]] < day[wit]) & (P["death"][k[wit]] > day[wit])
    add_rows(occ[wit], k[wit], "WITNESS")
    da_child = (occ[wit], k[wit], day[wit])
    # ASB
    age_ok = (a >= 12) & (a < 45)
    i, day = _draw(rng, np.where(age_ok, np.where(tr, 0.35, 0.008), 0), lo, hi)
    sec = day * DAY + rng.integers(0, DAY, len(i))
    occ = new_occ(sec, "ASB")
    add_rows(occ, i, "OFFENDER")
    resident_adults = np.nonzero(P["is_adult"] & (P["kind"] != 3))[0]
    v = rng.random(len(i)) < 0.6
    cand = resident_adults[rng.integers(0, len(resident_adults), len(i))]
    v &= _resident_on(ctx, cand, day) & (cand != i)
    add_rows(occ[v], cand[v], "VICTIM")
    wv = rng.random(len(i)) < 0.2
    cand2 = resident_adults[rng.integers(0, len(resident_adults), len(i))]
    wv &= _resident_on(ctx, cand2, day) & (cand2 != i) & (cand2 != cand)
    add_rows(occ[wv], cand2[wv], "WITNESS")
    # missing persons
    i, day = _draw(rng, np.where((a >= 11) & (a < 18), np.where(tr, 0.3, 0.004), np.where(a >= 80, 0.003, 0)), lo, hi)
    occ = new_occ(day * DAY + rng.integers(0, DAY, len(i)), "MISSING_PERSON")
    add_rows(occ, i, "SUBJECT")
    # concern for welfare
    i, day = _draw(rng, np.where(a >= 65, 0.012, np.where(a >= 16, 0.004 + 0.08 * tr, 0)), lo, hi)
    occ = new_occ(day * DAY + rng.integers(0, DAY, len(i)), "CONCERN_FOR_WELFARE")
    add_rows(occ, i, "SUBJECT")

    occ_sec = np.concatenate(occ_sec_list)
    occ_type = np.concatenate(occ_type_list)
    o = np.concatenate(rows_occ)
    pid = np.concatenate(rows_pid)
    role = np.concatenate(rows_role)
    occ_ids = _ids(rng, "OCC", n_occ, 8, 20_000_000)
    nominal = _ids(rng, "N", NP, 7, 1_000_000)
    dup_nom = _ids(rng, "N", NP, 7, 5_000_000)  # a second nominal for a few people
    has_dup = rng.random(NP) < 0.02
    use_dup = has_dup[pid] & (rng.random(len(pid)) < 0.3)
    nom = np.where(use_dup, dup_nom[pid], nominal[pid]).astype(object)
    sec = occ_sec[o]
    key = np.array([f"{x}|{y}" for x, y in zip(occ_ids[o], nom)], dtype=object)
    frame = pl.DataFrame({"_pid": pid, "_day": sec // DAY, "_rec": sec // DAY, "_key": key,
                          "occurrence_id": occ_ids[o], "nominal_id": nom}).with_columns(
        pl.Series("person_role", role, dtype=pl.Utf8), pl.Series("occurrence_type", occ_type[o], dtype=pl.Utf8),
        _dt(sec).alias("occurrence_datetime"))
    return frame, da_child


def simulate_csc(ctx: Ctx, da_child) -> pl.DataFrame:
    rng = ctx.rng("csc")
    P = ctx.P
    a = _age_mid(ctx)
    lo, hi = _exposure(ctx, resident_only=True)
    age_ok = a < 17.5
    i, day = _draw(rng, np.where(age_ok, np.where(P["troubled"], 0.35, 0.018), 0), lo, hi)
    src = _choice(rng, ["POLICE", "SCHOOL", "HEALTH", "LA_SERVICES", "INDIVIDUAL", "OTHER"], len(i), [0.3, 0.2, 0.15, 0.1, 0.1, 0.15])
    _, kid, dday = da_child
    m = rng.random(len(kid)) < 0.7
    kid, dday = kid[m], dday[m] + rng.integers(0, 4, m.sum())
    pid = np.concatenate([i, kid]).astype(np.int64)
    day = np.concatenate([day, dday])
    src = np.concatenate([src, np.full(len(kid), "POLICE", dtype=object)])
    age = age_on(P["dob"][pid], day)
    keep = (age < 18) & _resident_on(ctx, pid, day) & (day <= ctx.last_day)
    pid, day, src = pid[keep], day[keep], src[keep]
    n = len(pid)
    ref_sec = day * DAY + rng.integers(7 * 3600, 22 * 3600, n)
    u = rng.random(n)
    delay = np.where(u < 0.78, rng.integers(1800, 20 * 3600, n),
                     np.where(u < 0.92, rng.integers(20 * 3600, 3 * DAY, n), rng.integers(3 * DAY, 12 * DAY, n)))
    dec_sec = ref_sec + delay
    dec = _choice(rng, ["NFA", "ASSESSMENT", "STRATEGY_DISCUSSION", "EARLY_HELP"], n, [0.35, 0.4, 0.08, 0.17])
    child_ids = _ids(rng, "C", len(P["dob"]), 7, 1_000_000)
    rid = _ids(rng, "CSC", n, 7, 1_000_000)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": dec_sec // DAY, "_key": rid, "referral_id": rid,
                         "child_id": child_ids[pid]}).with_columns(
        _dt(ref_sec).alias("referral_datetime"), pl.Series("referral_source", src, dtype=pl.Utf8),
        _dt(dec_sec).alias("decision_datetime"), pl.Series("decision", dec, dtype=pl.Utf8))


TERMS = [("AUTUMN", (9, 1), (12, 19), 0), ("SPRING", (1, 5), (3, 27), 1), ("SUMMER", (4, 13), (7, 22), 1)]


def term_dates(ay_start: int):
    out = []
    for name, (m1, d1), (m2, d2), yoff in TERMS:
        out.append((name, date(ay_start + yoff, m1, d1), date(ay_start + yoff, m2, d2)))
    return out


def simulate_school(ctx: Ctx, snapshot_end: date) -> pl.DataFrame:
    """All pupil-term rows of the academic year containing snapshot_end, terms ended by then."""
    rng = ctx.rng(f"school{snapshot_end.isoformat()}")
    rng_p = ctx.rng("school_pupil")  # per-pupil propensities stable across snapshots
    P = ctx.P
    NP = len(P["dob"])
    ay = snapshot_end.year if snapshot_end.month >= 9 else snapshot_end.year - 1
    absence_base = rng_p.beta(2.5, 64, NP)
    absence_base = np.where(P["troubled"], rng_p.beta(2.0, 15, NP), absence_base)
    w = ctx.world
    nw = w.wards.height
    prim_urn = 113000 + np.arange(nw) * 7 + 1
    sec_urn = 136000 + np.arange((nw + 2) // 3) * 11 + 5
    people = w.people
    upn_present = people["upn"].is_not_null().to_numpy()
    frames = []
    aug31 = d2i(date(ay, 8, 31))
    age31 = age_on(P["dob"], aug31)
    pupil = upn_present & (age31 >= 4) & (age31 <= 15)
    for ti, (term, start, end) in enumerate(term_dates(ay)):
        if end > snapshot_end:
            break
        e = d2i(end)
        mid = (d2i(start) + e) // 2
        m = pupil & (P["res_from"] <= mid) & (P["res_to"] >= mid) & (P["death"] > e)
        pid = np.nonzero(m)[0]
        n = len(pid)
        possible = {"AUTUMN": 142, "SPRING": 118, "SUMMER": 130}[term] - rng.integers(0, 5, n) * 2
        absence = np.clip(absence_base[pid] * rng.uniform(0.75, 1.25, n), 0, 1)
        attended = np.round(possible * (1 - absence)).astype(np.int64)
        frames.append(pl.DataFrame({"_pid": pid.astype(np.int64), "_day": np.full(n, mid), "_rec": np.full(n, e),
                                    "_end": np.full(n, e),
                                    "academic_year": [f"{ay}/{(ay + 1) % 100:02d}"] * n, "term": [term] * n,
                                    "possible_sessions": possible.astype(np.int64), "attended_sessions": attended,
                                    "_term_no": np.full(n, ti)}))
    df = pl.concat(frames)
    # the school (URN) is assigned from the ward of residence once addresses are attached
    return df, prim_urn, sec_urn, age31
