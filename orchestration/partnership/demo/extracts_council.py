"""Event simulation for the councils' and police extracts: housing adaptations, homelessness,
adult and children's social care, police incidents and school attendance (see `extracts` for
the frames' private columns)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from orchestration.partnership.demo.extracts import (
    DAY,
    Ctx,
    age_mid,
    as_date,
    as_datetime,
    choice,
    draw,
    exposure,
    followups,
    make_ids,
    resident_on,
)
from orchestration.partnership.demo.world import FOREVER, age_on, d2i

# ----------------------------------------------------------------------------- council

def simulate_dfg(ctx: Ctx, falls: dict) -> pl.DataFrame:
    rng = ctx.rng("dfg")
    a = age_mid(ctx)
    pid1, day1, _ = followups(ctx, rng, falls, 0.06, 10, 90)
    lo, hi = exposure(ctx, resident_only=True)
    # the full snapshot holds all cases to date: long-standing residents have older cases too
    P = ctx.P
    early = np.maximum(ctx.gen_lo - 500, np.maximum(P["res_from"], P["dob"]))
    lo = np.where(P["res_from"] <= ctx.gen_lo, early, lo)
    idx, day = draw(rng, np.where(a >= 65, 0.007, np.where(a >= 18, 0.0012, 0.0008)), lo, hi)
    pid = np.concatenate([pid1, idx]).astype(np.int64)
    day = np.concatenate([day1, day])
    n = len(pid)
    approved = rng.random(n) < 0.85
    appr = np.where(approved, day + rng.integers(14, 120, n), FOREVER)
    done = approved & (rng.random(n) < 0.92)
    comp = np.where(done, appr + np.ceil(rng.gamma(2.0, 45, n)).astype(int), FOREVER)
    typ = choice(rng, ["STAIRLIFT", "LEVEL_ACCESS_SHOWER", "RAMP", "HOIST", "EXTENSION", "OTHER"], n,
                  [0.3, 0.35, 0.1, 0.07, 0.05, 0.13])
    base = {"STAIRLIFT": 3500, "LEVEL_ACCESS_SHOWER": 7000, "RAMP": 2500, "HOIST": 4000, "EXTENSION": 28000, "OTHER": 1500}
    amt = np.round(np.array([base[t] for t in typ]) * rng.uniform(0.6, 1.5, n), 2)
    ref = make_ids(rng, "DFG/", n, 6, 10_000, ctx.shard.ids)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": day, "_key": ref, "_appr": appr, "_comp": comp,
                         "case_ref": ref}).with_columns(
        as_date(day).alias("referral_date"), pl.Series("grant_amount", amt, dtype=pl.Float64),
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
    lo, hi = exposure(ctx, resident_only=True)
    lp = np.where(has, lead, 0)
    lo_h = np.where(has, lo[lp] - 400, 0)
    hi_h = np.where(has, hi[lp], -1)
    hidx, day = draw(rng, rate, lo_h, hi_h)
    pid = lead[hidx]
    keep = resident_on(ctx, pid, day)
    # allow approaches before the simulated window for residents of long standing
    keep |= (day < ctx.gen_lo) & (P["res_from"][pid] <= day) & (P["death"][pid] > day)
    hidx, day, pid = hidx[keep], day[keep], pid[keep]
    n = len(pid)
    ht = hhs["htype"].to_numpy()[hidx]
    nk = kids[hidx]
    htype = np.select([nk > 0, np.isin(ht, [1, 3]), np.isin(ht, [0, 2])], ["FAMILY_WITH_CHILDREN", "COUPLE", "SINGLE"], "OTHER").astype(object)
    duty = choice(rng, ["PREVENTION", "RELIEF", "MAIN"], n, [0.55, 0.35, 0.10])
    close = day + np.ceil(rng.gamma(1.5, 90, n)).astype(int)
    blank_uprn = rng.random(n) < 0.2
    ref = make_ids(rng, "HL", n, 6, 100_000, ctx.shard.ids)
    return pl.DataFrame({"_pid": pid.astype(np.int64), "_day": day, "_rec": day, "_key": ref, "_close": close,
                         "_blank_uprn": blank_uprn, "case_ref": ref}).with_columns(
        as_date(day).alias("approach_date"), pl.Series("duty_type", duty, dtype=pl.Utf8),
        pl.Series("household_type", htype, dtype=pl.Utf8),
        pl.Series("children_in_household", nk.astype(np.int64)))


# ----------------------------------------------------------------------------- county council

def simulate_asc(ctx: Ctx, falls: dict) -> pl.DataFrame:
    rng = ctx.rng("asc")
    a = age_mid(ctx)
    P = ctx.P
    m = falls["admitted"]
    sub = {k: v[m] for k, v in falls.items()}
    pid1, day1, _ = followups(ctx, rng, sub, 0.25, 1, 20)
    src1 = np.full(len(pid1), "HOSPITAL", dtype=object)
    lo, hi = exposure(ctx, resident_only=True)
    idx, day = draw(rng, np.where(a >= 65, 0.06 + 0.04 * (a >= 80), np.where(a >= 18, 0.008 + 0.05 * P["troubled"], 0)), lo, hi)
    src2 = choice(rng, ["HOSPITAL", "GP", "SELF", "FAMILY", "POLICE", "OTHER"], len(idx), [0.25, 0.25, 0.15, 0.2, 0.05, 0.1])
    pid = np.concatenate([pid1, idx]).astype(np.int64)
    day = np.concatenate([day1, day])
    src = np.concatenate([src1, src2])
    n = len(pid)
    ref_sec = day * DAY + rng.integers(8 * 3600, 18 * 3600, n)
    dec_sec = ref_sec + np.ceil(rng.gamma(1.2, 4.0, n) * DAY).astype(np.int64) + 3600
    age = age_on(P["dob"][pid], day)
    reason = np.where(age >= 65, choice(rng, ["PHYSICAL_SUPPORT", "MEMORY_COGNITION", "SENSORY_SUPPORT", "SOCIAL_SUPPORT", "MENTAL_HEALTH"], n, [0.6, 0.2, 0.05, 0.1, 0.05]),
                      choice(rng, ["PHYSICAL_SUPPORT", "LEARNING_DISABILITY", "MENTAL_HEALTH", "SOCIAL_SUPPORT", "SENSORY_SUPPORT"], n, [0.3, 0.2, 0.3, 0.15, 0.05]))
    out = choice(rng, ["ASSESSMENT", "INFORMATION_ADVICE", "NFA", "SIGNPOSTED"], n, [0.5, 0.2, 0.15, 0.15])
    rid = make_ids(rng, "ASC", n, 7, 1_000_000, ctx.shard.ids)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": dec_sec // DAY, "_key": rid, "referral_id": rid}).with_columns(
        as_datetime(ref_sec).alias("referral_datetime"), pl.Series("referral_source", src, dtype=pl.Utf8),
        pl.Series("primary_support_reason", reason, dtype=pl.Utf8), as_datetime(dec_sec).alias("decision_datetime"),
        pl.Series("outcome", out, dtype=pl.Utf8))


def simulate_police(ctx: Ctx) -> pl.DataFrame:
    rng = ctx.rng("police")
    P = ctx.P
    a = age_mid(ctx)
    lo, hi = exposure(ctx, resident_only=True)
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
    i, day = draw(rng, rate, lo[a1], np.minimum(hi[a1], hi[a2]))
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
    i, day = draw(rng, np.where(age_ok, np.where(tr, 0.35, 0.008), 0), lo, hi)
    sec = day * DAY + rng.integers(0, DAY, len(i))
    occ = new_occ(sec, "ASB")
    add_rows(occ, i, "OFFENDER")
    resident_adults = np.nonzero(P["is_adult"] & (P["kind"] != 3))[0]
    v = rng.random(len(i)) < 0.6
    cand = resident_adults[rng.integers(0, len(resident_adults), len(i))]
    v &= resident_on(ctx, cand, day) & (cand != i)
    add_rows(occ[v], cand[v], "VICTIM")
    wv = rng.random(len(i)) < 0.2
    cand2 = resident_adults[rng.integers(0, len(resident_adults), len(i))]
    wv &= resident_on(ctx, cand2, day) & (cand2 != i) & (cand2 != cand)
    add_rows(occ[wv], cand2[wv], "WITNESS")
    # missing persons
    i, day = draw(rng, np.where((a >= 11) & (a < 18), np.where(tr, 0.3, 0.004), np.where(a >= 80, 0.003, 0)), lo, hi)
    occ = new_occ(day * DAY + rng.integers(0, DAY, len(i)), "MISSING_PERSON")
    add_rows(occ, i, "SUBJECT")
    # concern for welfare
    i, day = draw(rng, np.where(a >= 65, 0.012, np.where(a >= 16, 0.004 + 0.08 * tr, 0)), lo, hi)
    occ = new_occ(day * DAY + rng.integers(0, DAY, len(i)), "CONCERN_FOR_WELFARE")
    add_rows(occ, i, "SUBJECT")

    occ_sec = np.concatenate(occ_sec_list)
    occ_type = np.concatenate(occ_type_list)
    o = np.concatenate(rows_occ)
    pid = np.concatenate(rows_pid)
    role = np.concatenate(rows_role)
    occ_ids = make_ids(rng, "OCC", n_occ, 8, 20_000_000, ctx.shard.ids)
    nominal = make_ids(rng, "N", NP, 7, 1_000_000, ctx.shard.ids)
    dup_nom = make_ids(rng, "N", NP, 7, 5_000_000, ctx.shard.ids)  # a second nominal for a few people
    has_dup = rng.random(NP) < 0.02
    use_dup = has_dup[pid] & (rng.random(len(pid)) < 0.3)
    nom = np.where(use_dup, dup_nom[pid], nominal[pid]).astype(object)
    sec = occ_sec[o]
    key = np.array([f"{x}|{y}" for x, y in zip(occ_ids[o], nom)], dtype=object)
    frame = pl.DataFrame({"_pid": pid, "_day": sec // DAY, "_rec": sec // DAY, "_key": key,
                          "occurrence_id": occ_ids[o], "nominal_id": nom}).with_columns(
        pl.Series("person_role", role, dtype=pl.Utf8), pl.Series("occurrence_type", occ_type[o], dtype=pl.Utf8),
        as_datetime(sec).alias("occurrence_datetime"))
    return frame, da_child


def simulate_csc(ctx: Ctx, da_child) -> pl.DataFrame:
    rng = ctx.rng("csc")
    P = ctx.P
    a = age_mid(ctx)
    lo, hi = exposure(ctx, resident_only=True)
    age_ok = a < 17.5
    i, day = draw(rng, np.where(age_ok, np.where(P["troubled"], 0.35, 0.018), 0), lo, hi)
    src = choice(rng, ["POLICE", "SCHOOL", "HEALTH", "LA_SERVICES", "INDIVIDUAL", "OTHER"], len(i), [0.3, 0.2, 0.15, 0.1, 0.1, 0.15])
    _, kid, dday = da_child
    m = rng.random(len(kid)) < 0.7
    kid, dday = kid[m], dday[m] + rng.integers(0, 4, m.sum())
    pid = np.concatenate([i, kid]).astype(np.int64)
    day = np.concatenate([day, dday])
    src = np.concatenate([src, np.full(len(kid), "POLICE", dtype=object)])
    age = age_on(P["dob"][pid], day)
    keep = (age < 18) & resident_on(ctx, pid, day) & (day <= ctx.last_day)
    pid, day, src = pid[keep], day[keep], src[keep]
    n = len(pid)
    ref_sec = day * DAY + rng.integers(7 * 3600, 22 * 3600, n)
    u = rng.random(n)
    delay = np.where(u < 0.78, rng.integers(1800, 20 * 3600, n),
                     np.where(u < 0.92, rng.integers(20 * 3600, 3 * DAY, n), rng.integers(3 * DAY, 12 * DAY, n)))
    dec_sec = ref_sec + delay
    dec = choice(rng, ["NFA", "ASSESSMENT", "STRATEGY_DISCUSSION", "EARLY_HELP"], n, [0.35, 0.4, 0.08, 0.17])
    child_ids = make_ids(rng, "C", len(P["dob"]), 7, 1_000_000, ctx.shard.ids)
    rid = make_ids(rng, "CSC", n, 7, 1_000_000, ctx.shard.ids)
    return pl.DataFrame({"_pid": pid, "_day": day, "_rec": dec_sec // DAY, "_key": rid, "referral_id": rid,
                         "child_id": child_ids[pid]}).with_columns(
        as_datetime(ref_sec).alias("referral_datetime"), pl.Series("referral_source", src, dtype=pl.Utf8),
        as_datetime(dec_sec).alias("decision_datetime"), pl.Series("decision", dec, dtype=pl.Utf8))


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
    wo = w.shard.ward_offset
    prim_urn = 113000 + (np.arange(nw) + wo) * 7 + 1
    sec_urn = 136000 + (np.arange((nw + 2) // 3) + wo // 3) * 11 + 5
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
                                    "_term_no": np.full(n, ti)}).with_columns(
            as_date(np.full(n, mid)).alias("census_date")))  # the census day: the address is as of it
    df = pl.concat(frames)
    # the school (URN) is assigned from the ward of residence once addresses are attached
    return df, prim_urn, sec_urn, age31
