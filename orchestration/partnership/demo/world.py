"""The synthetic world: geography, households, people, address histories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

import orchestration.partnership.demo.names as N
from orchestration.partnership.demo.ids import (
    make_nhs_numbers,
    make_upns,
    nhs_check_digit,
)
from orchestration.partnership.demo.presets import WHOLE, Preset, Shard

EPOCH = date(1970, 1, 1)
FOREVER = 2**30  # "no end" sentinel in day numbers
PC_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # letters allowed in the inward code
POSTCODE_AREAS = ("RV", "RW", "RX", "RY", "RZ", "RT", "RU", "RS")  # one per part of a sharded population


def d2i(d: date) -> int:
    return (d - EPOCH).days


def i2d(i: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + int(i))


def days_to_pl(days: np.ndarray, name: str) -> pl.Series:
    return pl.Series(name, np.asarray(days, dtype="int64").astype("datetime64[D]")).cast(pl.Date)


def age_on(dob_days: np.ndarray, day: np.ndarray | int) -> np.ndarray:
    """Exact age in completed years on a day (vectorised, calendar correct)."""
    dob = np.asarray(dob_days, dtype="int64").astype("datetime64[D]")
    d = np.broadcast_to(np.asarray(day, dtype="int64"), dob.shape).astype("datetime64[D]")
    by = dob.astype("datetime64[Y]").astype(int)
    dy = d.astype("datetime64[Y]").astype(int)
    # calendar-correct: compare (month, day)
    bm = dob.astype("datetime64[M]").astype(int) % 12
    dm = d.astype("datetime64[M]").astype(int) % 12
    bd = (dob - dob.astype("datetime64[M]")).astype(int)
    dd = (d - d.astype("datetime64[M]")).astype(int)
    before = (dm < bm) | ((dm == bm) & (dd < bd))
    return dy - by - before.astype(int)


@dataclass
class World:
    wards: pl.DataFrame
    lsoas: pl.DataFrame
    postcodes: pl.DataFrame
    addresses: pl.DataFrame  # addr_idx, uprn, address_line, postcode, lsoa_code, ward_code
    people: pl.DataFrame  # pid (int) + attributes
    spells: pl.DataFrame  # pid, addr_idx (-1 external), uprn, postcode, lsoa_code, ward_code, valid_from, valid_to (int days)
    households: pl.DataFrame
    sim_start: int
    as_of: int
    shard: Shard = WHOLE


def _ward_names(nw: int, first: int) -> list[str]:
    if first + nw <= len(N.WARD_NAMES):
        return N.WARD_NAMES[first:first + nw]
    combos = [f"{p} {r}" for r in N.WARD_ROOTS for p in N.WARD_PREFIX]
    return [combos[i % len(combos)] + (f" {i // len(combos) + 1}" if i >= len(combos) else "")
            for i in range(first, first + nw)]


def build_geography(rng: np.random.Generator, preset: Preset, n_addr: int, shard: Shard = WHOLE):
    nw = preset.wards
    wo, lo = shard.ward_offset, shard.lsoa_offset
    area = POSTCODE_AREAS[shard.index]  # each part its own postcode area: a district number has two digits at most
    ward_names = _ward_names(nw, wo)
    ward_codes = [f"E059{i + 1 + wo:05d}" for i in range(nw)]
    wards = pl.DataFrame({
        "ward_code": ward_codes, "ward_name": ward_names,
        "district_code": ["E07900001"] * nw, "district_name": ["Riverside"] * nw,
    })
    # LSOAs per ward, at least 3, proportional to a random ward size
    w = rng.uniform(0.7, 1.3, nw)
    per = np.maximum(3, np.floor(w / w.sum() * preset.lsoas)).astype(int)
    while per.sum() < preset.lsoas:
        per[rng.integers(nw)] += 1
    while per.sum() > preset.lsoas:
        j = int(np.argmax(per))
        per[j] -= 1
    lsoa_ward = np.repeat(np.arange(nw), per)
    nl = len(lsoa_ward)
    lsoa_codes = [f"E019{i + 1 + lo:05d}" for i in range(nl)]
    lsoa_names = [f"Riverside {(i + lo) // 4 + 1:03d}{'ABCD'[(i + lo) % 4]}" for i in range(nl)]
    lsoas = pl.DataFrame({"lsoa_code": lsoa_codes, "lsoa_name": lsoa_names,
                          "ward_code": [ward_codes[j] for j in lsoa_ward]})
    # addresses spread evenly over LSOAs, ~15 per postcode
    addr_lsoa = np.sort(np.arange(n_addr) % nl)
    addr_per_lsoa = np.bincount(addr_lsoa, minlength=nl)
    pc_per_lsoa = np.maximum(2, np.round(addr_per_lsoa / 15).astype(int))
    pc_lsoa = np.repeat(np.arange(nl), pc_per_lsoa)
    pc_ward = lsoa_ward[pc_lsoa]
    pcs = []
    counters = np.zeros(nw, dtype=int)
    ward_inward_orders = [rng.permutation(4000) for _ in range(nw)]
    for wj in pc_ward:
        k = ward_inward_orders[wj][counters[wj]]
        counters[wj] += 1
        sector = k // 400
        rest = k % 400
        pcs.append(f"{area}{wj + 1} {sector}{PC_LETTERS[rest // 20]}{PC_LETTERS[rest % 20]}")
    postcodes = pl.DataFrame({"postcode": pcs, "lsoa_code": [lsoa_codes[i] for i in pc_lsoa],
                              "ward_code": [ward_codes[j] for j in pc_ward]})
    # each address -> a postcode within its LSOA
    pc_start = np.concatenate([[0], np.cumsum(pc_per_lsoa)[:-1]])
    addr_pc = pc_start[addr_lsoa] + rng.integers(0, pc_per_lsoa[addr_lsoa])
    n_pc = len(pcs)
    street = np.array([f"{N.STREET_ROOTS[i % len(N.STREET_ROOTS)]} {N.STREET_SUFFIX[(i // len(N.STREET_ROOTS) + i * 7) % len(N.STREET_SUFFIX)]}" for i in range(n_pc)], dtype=object)
    street = street[rng.permutation(n_pc)]
    order = np.argsort(addr_pc, kind="stable")
    house_no = np.empty(n_addr, dtype=int)
    sorted_pc = addr_pc[order]
    first = np.searchsorted(sorted_pc, sorted_pc, side="left")
    house_no[order] = np.arange(n_addr) - first + 1
    uprn = 100090000000 + shard.index * 10**8 + rng.permutation(max(10 * n_addr, 1_000_000))[:n_addr].astype(np.int64)
    pcs_arr = np.array(pcs, dtype=object)
    addresses = pl.DataFrame({
        "addr_idx": np.arange(n_addr),
        "uprn": uprn.astype(str).astype(object),
        "address_line": [f"{h} {s}" for h, s in zip(house_no, street[addr_pc])],
        "postcode": pcs_arr[addr_pc],
        "lsoa_code": np.array(lsoa_codes, dtype=object)[addr_lsoa],
        "ward_code": np.array(ward_codes, dtype=object)[lsoa_ward[addr_lsoa]],
    })
    return wards, lsoas, postcodes, addresses


# household types: 0 older single, 1 older couple, 2 adult single, 3 adult couple,
# 4 couple family, 5 lone parent, 6 sharers
HH_WEIGHTS = np.array([0.19, 0.17, 0.15, 0.14, 0.18, 0.06, 0.04])


def _older_ages(rng, n):
    a = 65 + rng.exponential(11.0, n)
    return np.clip(a, 65, 98.9)  # so nobody is older than 100 by as_of


def _pick_names(rng, pool, n, zipf=1.1):
    w = 1.0 / np.arange(1, len(pool) + 1) ** zipf
    w = w[rng.permutation(len(pool))]  # shuffle which names are common
    return np.array(pool, dtype=object)[rng.choice(len(pool), n, p=w / w.sum())]


def build_world(rng: np.random.Generator, preset: Preset, sim_start: date, as_of: date,
                shard: Shard = WHOLE) -> World:
    s0, s1 = d2i(sim_start), d2i(as_of)
    years = (s1 - s0) / 365.25
    hw = HH_WEIGHTS.copy()
    hw[:2] *= preset.share_65_plus_boost
    hw /= hw.sum()
    H = int(preset.residents / 1.98)
    htype = rng.choice(7, H, p=hw)
    n_kids = np.where(np.isin(htype, [4, 5]), rng.choice([1, 2, 3], H, p=[0.4, 0.4, 0.2]), 0)
    n_adults = np.select([htype == 0, htype == 1, htype == 2, htype == 3, htype == 4, htype == 5, htype == 6],
                         [1, 2, 1, 2, 2, 1, 3])
    size = n_adults + n_kids
    hh = np.repeat(np.arange(H), size)
    pos = np.arange(len(hh)) - np.repeat(np.cumsum(size) - size, size)
    is_adult = pos < n_adults[hh]
    P = len(hh)
    ht = htype[hh]
    # ages at sim_start
    age = np.empty(P)
    older = np.isin(ht, [0, 1]) & is_adult
    age[older] = _older_ages(rng, older.sum())
    kid = ~is_adult
    age[kid] = rng.uniform(0, 18, kid.sum())
    # parents: oldest kid + 20..38
    max_kid = np.zeros(H)
    np.maximum.at(max_kid, hh[kid], age[kid])
    par = is_adult & np.isin(ht, [4, 5])
    age[par] = np.clip(max_kid[hh[par]] + rng.uniform(20, 38, par.sum()), 18, 64.9)
    other = is_adult & np.isin(ht, [2, 3, 6])
    age[other] = rng.uniform(18, 65, other.sum())
    # sharers: sometimes an older relative
    oldrel = other & (ht == 6) & (pos == 2) & (rng.random(P) < 0.3)
    age[oldrel] = _older_ages(rng, oldrel.sum())
    # couples: partner age close to first
    partner = is_adult & (pos == 1) & np.isin(ht, [1, 3, 4])
    first_idx = np.nonzero(partner)[0] - 1
    age[partner] = np.clip(age[first_idx] + rng.normal(0, 3, partner.sum()), np.where(ht[partner] == 1, 65, 18), 98.9)
    # sex
    sex = np.where(rng.random(P) < 0.5, "M", "F").astype(object)
    sex[partner] = np.where(sex[first_idx] == "M", "F", "M")
    old_f = older & (ht == 0) & (rng.random(P) < 0.35)  # widowed older singles are mostly women
    sex[old_f] = "F"
    # visitors (non-residents who use health services here)
    V = int(P * 0.025)
    v_age = np.where(rng.random(V) < 0.4, _older_ages(rng, V), rng.uniform(0, 65, V))
    v_sex = np.where(rng.random(V) < 0.5, "M", "F").astype(object)
    # canaries: older residents in their own households
    canaries = N.CANARIES if shard.index == 0 else []  # the canaries live in the first part only
    C = len(canaries)
    c_age = np.array([71.3, 78.8, 83.2, 88.5, 92.1])[:C]
    c_sex = np.array([s for _, _, s in canaries], dtype=object)
    # assemble people: residents, then canaries, then visitors
    hh_all = np.concatenate([hh, H + np.arange(C), H + C + np.arange(V)])
    age_all = np.concatenate([age, c_age, v_age])
    sex_all = np.concatenate([sex, c_sex, v_sex])
    is_adult_all = np.concatenate([is_adult, np.ones(C, bool), v_age >= 18])
    kind = np.concatenate([np.zeros(P, int), np.zeros(C, int), np.full(V, 3)])
    H2 = H + C + V
    htype_all = np.concatenate([htype, np.zeros(C, int), np.full(V, 7)])
    # births during the simulation (into families and couples)
    n_birth = int(P * 0.011 * years)
    fam_hh = np.nonzero(np.isin(htype, [3, 4, 5]))[0]
    b_hh = rng.choice(fam_hh, n_birth)
    b_dob = rng.integers(s0, s1, n_birth)
    NP = len(hh_all) + n_birth
    dob = np.empty(NP, dtype=np.int64)
    dob[: len(hh_all)] = s0 - np.floor(age_all * 365.25).astype(np.int64) - rng.integers(0, 2, len(hh_all))
    dob[len(hh_all):] = b_dob
    hh_all = np.concatenate([hh_all, b_hh])
    sex_all = np.concatenate([sex_all, np.where(rng.random(n_birth) < 0.51, "M", "F").astype(object)])
    is_adult_all = np.concatenate([is_adult_all, np.zeros(n_birth, bool)])
    kind = np.concatenate([kind, np.zeros(n_birth, int)])
    is_canary = np.zeros(NP, bool)
    is_canary[P:P + C] = True
    # names: household surname (some partners keep their own), generational forenames
    hh_surname = _pick_names(rng, N.SURNAMES, H2, zipf=0.9)
    surname = hh_surname[hh_all]
    own = rng.random(NP) < 0.12
    surname[own] = _pick_names(rng, N.SURNAMES, own.sum(), zipf=0.9)
    born_old = dob < d2i(date(1965, 1, 1))
    fore = np.empty(NP, dtype=object)
    for old_flag, s, pool in [(True, "M", N.MALE_OLD), (True, "F", N.FEMALE_OLD),
                              (False, "M", N.MALE_YOUNG), (False, "F", N.FEMALE_YOUNG)]:
        m = (born_old == old_flag) & (sex_all == s)
        fore[m] = _pick_names(rng, pool, m.sum())
    for i, (f, s, _) in enumerate(canaries):
        fore[P + i], surname[P + i] = f, s
    # NHS numbers (canaries get distinctive 999-prefixed ones)
    nhs = make_nhs_numbers(rng, NP, part=shard.ids)
    c_nhs = []
    k = 0
    while len(c_nhs) < C:
        first9 = np.array([int(c) for c in f"9990{k:05d}"])
        chk = nhs_check_digit(first9[None, :])[0]
        if chk != 10:
            c_nhs.append(f"9990{k:05d}{chk}")
        k += 7
    nhs[P:P + C] = c_nhs
    # UPN for school-age-ish children (age 3..19 at as_of)
    age_asof = (s1 - dob) / 365.25
    has_upn = (age_asof >= 3) & (age_asof < 20) & (kind != 3)
    upn = np.full(NP, None, dtype=object)
    upn[has_upn] = make_upns(rng, int(has_upn.sum()), la_code=909 + shard.index)
    # deaths
    age_mid = (s0 - dob) / 365.25
    q = np.clip(2.2e-5 * np.exp(0.095 * np.clip(age_mid, 0, 110)), 0, 0.6)
    t_death = s0 + rng.exponential(365.25 / np.maximum(q, 1e-9))
    t_death = np.maximum(t_death, dob + 1)
    death = np.where((t_death < s1) & ~is_canary, np.floor(t_death), FOREVER).astype(np.int64)
    # frailty (falls propensity) and household trouble (Supporting Families)
    frailty = rng.gamma(0.6, 1 / 0.6, NP)
    frailty[is_canary] = 6.0
    troubled_hh = np.zeros(H2, bool)
    troubled_hh[:H] = np.where(np.isin(htype, [4, 5]), rng.random(H) < 0.08, rng.random(H) < 0.015)
    # household migrations
    hcat = np.zeros(H2, int)  # 0 stay, 1 out-migrate, 2 in-migrate, 3 internal move, 4 visitor
    r = rng.random(H)
    hcat[:H] = np.select([r < 0.04, r < 0.08, r < 0.14], [1, 2, 3], 0)
    hcat[H + C:] = 4
    t_evt = rng.integers(s0 + 30, s1 - 5, H2)
    # showcase people: long-standing older residents whose names exercise apostrophes and accents
    showcase = np.zeros(NP, bool)
    stay_old = np.nonzero((np.arange(NP) < P) & (hcat[hh_all] == 0) & (np.isin(htype_all[hh_all], [0])))[0]
    show_names = [("Renée", "D’Arcy"), ("Zoë", "O'Brien"), ("Seán", "Ó Súilleabháin"), ("Hélène", "D’Souza")]
    for j, (f_, s_) in enumerate(show_names):
        i = stay_old[j * 7]
        fore[i], surname[i] = f_, s_
        sex_all[i] = "M" if f_ == "Seán" else "F"
        showcase[i] = True
    death[showcase] = FOREVER
    frailty[showcase] = 6.0
    n_res_hh = H + C
    n_addr = int(np.ceil(n_res_hh * 1.13)) + 10
    wards, lsoas, postcodes, addresses = build_geography(rng, preset, n_addr, shard)
    perm = rng.permutation(n_addr)
    home = np.full(H2, -1)
    base_hh = np.nonzero(hcat[:n_res_hh] != 2)[0]
    home[base_hh] = perm[: len(base_hh)]
    pool = perm[len(base_hh):]
    in_hh = np.nonzero(hcat == 2)[0]
    home[in_hh] = pool[: len(in_hh)]
    mv_hh = np.nonzero(hcat == 3)[0]
    new_home = np.full(H2, -1)
    new_home[mv_hh] = pool[len(in_hh): len(in_hh) + len(mv_hh)]
    assert len(in_hh) + len(mv_hh) <= len(pool)
    ext_pc = np.array(N.EXTERNAL_POSTCODES, dtype=object)[rng.integers(0, len(N.EXTERNAL_POSTCODES), H2)]
    since = s0 - rng.integers(0, 365 * 25, H2)
    # household spells: (hh, addr_idx or -1, ext_pc, from, to)
    rows_h, rows_a, rows_f, rows_t = [], [], [], []

    def add(hs, addr, f, t):
        rows_h.append(hs); rows_a.append(addr); rows_f.append(f); rows_t.append(t)

    m0 = np.nonzero(hcat == 0)[0]
    add(m0, home[m0], since[m0], np.full(len(m0), FOREVER))
    m1 = np.nonzero(hcat == 1)[0]
    add(m1, home[m1], since[m1], t_evt[m1] - 1)
    add(m1, np.full(len(m1), -1), t_evt[m1], np.full(len(m1), FOREVER))
    add(in_hh, np.full(len(in_hh), -1), np.full(len(in_hh), -FOREVER), t_evt[in_hh] - 1)
    add(in_hh, home[in_hh], t_evt[in_hh], np.full(len(in_hh), FOREVER))
    add(mv_hh, home[mv_hh], since[mv_hh], t_evt[mv_hh] - 1)
    add(mv_hh, new_home[mv_hh], t_evt[mv_hh], np.full(len(mv_hh), FOREVER))
    m4 = np.nonzero(hcat == 4)[0]
    add(m4, np.full(len(m4), -1), np.full(len(m4), -FOREVER), np.full(len(m4), FOREVER))
    hs = pl.DataFrame({"hh": np.concatenate(rows_h), "addr_idx": np.concatenate(rows_a),
                       "h_from": np.concatenate(rows_f).astype(np.int64), "h_to": np.concatenate(rows_t).astype(np.int64)})
    pid = np.arange(NP)
    ppl = pl.DataFrame({"pid": pid, "hh": hh_all, "dob": dob, "death": death})
    sp = ppl.join(hs, on="hh", how="inner")
    sp = sp.with_columns(
        pl.max_horizontal("h_from", "dob").alias("valid_from"),
        pl.min_horizontal("h_to", pl.col("death") - 1).alias("valid_to"),
    ).filter(pl.col("valid_from") <= pl.col("valid_to"))
    addr = addresses.select("addr_idx", "uprn", "postcode", "lsoa_code", "ward_code")
    sp = sp.join(addr, on="addr_idx", how="left")
    ext = pl.Series(ext_pc)
    sp = sp.with_columns(
        pl.when(pl.col("addr_idx") < 0).then(ext.gather(sp["hh"])).otherwise(pl.col("postcode")).alias("postcode")
    ).select("pid", "addr_idx", "uprn", "postcode", "lsoa_code", "ward_code", "valid_from", "valid_to").sort(["pid", "valid_from"])
    # district residence interval per person (at most one contiguous interval by construction)
    res = (sp.filter(pl.col("addr_idx") >= 0).group_by("pid")
           .agg(pl.col("valid_from").min().alias("res_from"), pl.col("valid_to").max().alias("res_to")))
    people = pl.DataFrame({
        "pid": pid, "person_id": [f"P{i + 1 + shard.person_offset:08d}" for i in pid], "nhs_number": nhs,
        "upn": pl.Series("upn", upn.tolist(), dtype=pl.Utf8),
        "forename": fore, "surname": surname, "dob": dob, "sex": sex_all, "hh": hh_all,
        "death": death, "frailty": frailty, "troubled": troubled_hh[hh_all], "is_canary": is_canary,
        "kind": kind, "is_adult": is_adult_all, "showcase": showcase, "htype": htype_all[hh_all],
    }).join(res, on="pid", how="left").sort("pid").with_columns(
        pl.col("res_from").fill_null(FOREVER), pl.col("res_to").fill_null(-FOREVER))
    households = pl.DataFrame({"hh": np.arange(H2), "htype": htype_all, "troubled": troubled_hh,
                               "home": home, "new_home": new_home, "hcat": hcat})
    return World(wards, lsoas, postcodes, addresses, people, sp, households, s0, s1, shard)


def population_estimates(world: World, years: list[int]) -> pl.DataFrame:
    frames = []
    sp = world.spells.filter(pl.col("addr_idx") >= 0)
    ppl = world.people.select("pid", "dob", "sex", "death")
    for y in years:
        d = d2i(date(y, 6, 30))
        cur = sp.filter((pl.col("valid_from") <= d) & (pl.col("valid_to") >= d)).join(ppl, on="pid")
        cur = cur.filter((pl.col("dob") <= d) & (pl.col("death") > d))
        ages = np.minimum(age_on(cur["dob"].to_numpy(), d), 90)
        cur = cur.with_columns(pl.Series("age", ages, dtype=pl.Int64))
        cnt = cur.group_by("ward_code", "sex", "age").agg(pl.len().alias("population"))
        grid = (world.wards.select("ward_code").join(pl.DataFrame({"sex": ["F", "M"]}), how="cross")
                .join(pl.DataFrame({"age": np.arange(91, dtype=np.int64)}), how="cross"))
        g = grid.join(cnt, on=["ward_code", "sex", "age"], how="left").with_columns(
            pl.col("population").fill_null(0).cast(pl.Int64), pl.lit(y, dtype=pl.Int64).alias("year"))
        frames.append(g.select("year", "ward_code", "sex", "age", "population"))
    return pl.concat(frames).sort(["year", "ward_code", "sex", "age"])
