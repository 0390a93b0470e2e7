"""Profiles: records with identical identifiers are one profile, and linkage works on profiles.
Also which profiles an incremental night scores (`tonight_profiles`) and which groups of them it
links again (`select_region`)."""

from __future__ import annotations

import duckdb

import orchestration.partnership.linkage.model as splink_model
from orchestration.partnership.linkage.state import FIRST, IDENT, KEY, PKEY, RECORD_KEYS


def tonight_profiles(mem: duckdb.DuckDBPyConnection) -> None:
    """Tonight's profiles (what is scored): last night's, with those whose records changed recounted.

    `pid` only names a profile for Splink and the joins around it (results are keyed by `pkey`):
    last night's unchanged profiles keep their row number in the stored table, which costs no
    sort; the others follow, numbered by their first record as a night linking everything
    numbers them, so that pairs among new profiles are scored in the same orientation."""
    ident = ", ".join(IDENT)
    withdrawn = mem.execute("select count(*) from removed_deliveries").fetchall()[0][0] > 0
    mem.execute("create table touched as select distinct pkey from new_records")
    if withdrawn:
        mem.execute(f"""insert into touched select distinct l.pkey from wh.identity.{RECORD_KEYS} l
                        semi join removed_deliveries using (contract_id, delivery_id) where l.pkey not in (select pkey from touched)""")
    first_of = lambda t: f"({', '.join(f'{t}.{c}' for c in FIRST.split(', '))})"  # noqa: E731
    if not withdrawn:
        # Nothing withdrawn: a stored profile's records are all still there, so its count and
        # first record are last night's with tonight's records added (not the stored records read).
        mem.execute(f"""create table touched_profiles as
            with t as (
                select pkey, {", ".join(f"any_value({c}) as {c}" for c in (*IDENT, "compared_postcode"))},
                       {", ".join(f"arg_min({k}, ({', '.join(KEY)})) as first_{k}" for k in KEY)}, count(*) as n_records
                from new_records group by pkey)
            select t.pkey, {", ".join(f"t.{c}" for c in (*IDENT, "compared_postcode"))},
                   {", ".join(f"case when s.pkey is not null and {first_of('s')} < {first_of('t')} then s.{c} else t.{c} end as {c}"
                              for c in FIRST.split(", "))},
                   t.n_records + coalesce(s.n_records, 0) as n_records
            from t left join wh.identity.linkage_profiles s using (pkey)""")
    else:
        _recount_touched(mem)
    cols = f"pkey, {ident}, compared_postcode, n_records"
    first = ", ".join(f"t.{c}" for c in FIRST.split(", "))
    mem.execute(f"""create table all_profiles as
        select p.rowid as pid, {cols}, component from wh.identity.linkage_profiles p anti join touched using (pkey)
        union all
        select (select coalesce(max(rowid) + 1, 0) from wh.identity.linkage_profiles) + row_number() over (order by {first}) - 1,
               {", ".join(f"t.{c}" for c in cols.split(", "))}, s.component
        from touched_profiles t left join wh.identity.linkage_profiles s using (pkey)""")


def _recount_touched(mem: duckdb.DuckDBPyConnection) -> None:
    """`touched_profiles` counted again from their stored records (less those withdrawn) and tonight's."""
    ident = ", ".join(IDENT)
    # A stored record's identifiers and compared postcode are its profile's (the gazetteer is
    # the same, or nothing is carried forward).
    mem.execute(f"""create table touched_profiles as
        with recs as (
            select {", ".join(f"l.{c}" for c in KEY)}, {", ".join(f"p.{c}" for c in IDENT)}, l.pkey, p.compared_postcode
            from wh.identity.{RECORD_KEYS} l join wh.identity.linkage_profiles p using (pkey)
            anti join removed_deliveries using (contract_id, delivery_id)
            where l.pkey in (select pkey from touched)
            union all select {", ".join(KEY)}, {ident}, pkey, compared_postcode from new_records)
        select pkey, {", ".join(f"any_value({c}) as {c}" for c in (*IDENT, "compared_postcode"))},
               {", ".join(f"arg_min({k}, ({', '.join(KEY)})) as first_{k}" for k in KEY)}, count(*) as n_records
        from recs group by pkey""")


def select_region(mem: duckdb.DuckDBPyConnection) -> None:
    """The records to link again tonight: those of every group of profiles (connected by a rule
    or a pair at the match threshold) that a new, changed or vanished profile belongs to or joins.

    Clustering, person ids and match methods of a group depend on that group alone, so groups
    outside the region keep last night's result, which is what linking everything would give."""
    p = splink_model.MATCH_THRESHOLD
    mem.execute(f"""create table region_components as
        with np as (select * from all_profiles where component is null),
        hit as (
            select s.component from wh.identity.linkage_profiles s where s.pkey in (select pkey from touched)
            union all
            select o.component from new_pairs_pk n join all_profiles o on o.pkey = n.pkey_a where n.match_probability >= {p}
            union all
            select o.component from new_pairs_pk n join all_profiles o on o.pkey = n.pkey_b where n.match_probability >= {p}
            union all select o.component from all_profiles o join np on o.nhs_number = np.nhs_number
            union all select o.component from all_profiles o join np on o.upn = np.upn
            union all select o.component from all_profiles o join np on o.local_id = np.local_id
            union all select o.component from all_profiles o join np on o.uprn = np.uprn
                and o.date_of_birth = np.date_of_birth and substr(o.forename, 1, 1) is not distinct from substr(np.forename, 1, 1))
        select distinct component from hit where component is not null""")
    # Last night's profiles (and so people, `prev_ids`: a person never spans two groups) in those groups.
    mem.execute("""create table prev_region as select pkey, person_id from wh.identity.linkage_profiles
                   where component in (select component from region_components)""")
    mem.execute("""create table region_pkeys as select pkey from all_profiles
                   where component is null or component in (select component from region_components)""")
    # One scan of the stored records' keys (25 million at the largest volume measured) for both:
    # the records of the region's profiles, and last night's of its people. A record's
    # identifiers are its profile's, its person its profile's, its household its person's.
    mem.execute(f"""create table stored_region as
        select {", ".join(f"l.{c}" for c in KEY)}, l.pkey from wh.identity.{RECORD_KEYS} l
        where l.pkey in (select pkey from region_pkeys union select pkey from prev_region)""")
    mem.execute(f"""create table region_records as
        select l.contract_id, l.delivery_id, l.row_number, {", ".join(f"p.{c}" for c in IDENT)}, l.pkey, p.compared_postcode
        from stored_region l
        join (select * from all_profiles semi join region_pkeys using (pkey)) p using (pkey)
        anti join removed_deliveries using (contract_id, delivery_id)
        union all select {", ".join(KEY)}, {", ".join(IDENT)}, pkey, compared_postcode from new_records""")
    mem.execute("""create table previous as select l.contract_id, l.delivery_id, l.row_number, r.person_id, pe.household_id
                   from stored_region l join prev_region r using (pkey)
                   left join wh.linkage.persons pe on pe.person_id = r.person_id""")
    mem.execute("create table prev_ids as select distinct person_id from prev_region")


# A record's place in (contract, delivery, row) order, and in (delivery, row) order, as one
# number: the delivery's rank (or id) above the row number (`build_profiles` checks they fit).
ROW_BITS = 40


def build_profiles(mem: duckdb.DuckDBPyConnection, source: str, dated: bool = False) -> None:
    """Records with identical identifiers are one profile; linkage works on profiles.

    `profiles`: one row per profile of `source` (the records being linked, with their
    identifiers), numbered (`pid`) by first record in (contract, delivery, row) order, with its
    first and last record. `records`: each record's delivery (`d`, in `deliveries`), row and
    profile, nothing more. Everything linkage decides about a record it decides about its
    profile (the same identifiers), so the identifiers are kept once per profile, not once per
    record (25 million records are a million profiles). `dated`: `source` has each record's date
    (`day`), kept in `records`, and each profile's first and last record day, for the households
    (a night linking everything)."""
    mem.execute("""create or replace table deliveries as
        select cast(row_number() over (order by contract_id, delivery_id) - 1 as bigint) as d, contract_id, delivery_id
        from (select distinct contract_id, delivery_id from cur_deliveries)""")
    lo, hi, dmin, dmax = mem.execute(f"""select min(row_number), max(row_number),
        (select min(delivery_id) from deliveries), (select max(delivery_id) from deliveries) from {source}""").fetchall()[0]
    if (lo is not None and (lo < 0 or hi >= 1 << ROW_BITS)) or (dmin is not None and (dmin < 0 or dmax >= 1 << (62 - ROW_BITS))):
        raise ValueError(f"linkage: row numbers {lo}..{hi} or delivery ids {dmin}..{dmax} out of the range linkage orders by")
    compared = (*IDENT, "compared_postcode")
    keyed = "pkey" in {c for (c,) in mem.execute(f"select column_name from (describe {source})").fetchall()}
    # Without a profile key per record (a night linking everything reads none: hashing 25 million
    # records' identifiers costs more than grouping them), records group by what is compared, under
    # a 64-bit hash of it that also joins them to their profile when no two profiles share one.
    group = "s.pkey" if keyed else f"hash({', '.join(f's.{c}' for c in compared)})"
    cols = ", ".join(f"any_value(s.{c}) as {c}" if keyed else f"s.{c}" for c in compared)
    mask = (1 << ROW_BITS) - 1
    days = ", min(s.day) as first_day, max(s.day) as last_day" if dated else ""
    mem.execute(f"""create table profiles as
        with p as (
            select {group} as _g, {cols},
                   min((d.d << {ROW_BITS}) + s.row_number) as first_at,
                   max((s.delivery_id << {ROW_BITS}) + s.row_number) as last_at, count(*) as n_records{days}
            from {source} s join deliveries d using (contract_id, delivery_id) group by _g{"" if keyed else ", " + ", ".join(f"s.{c}" for c in compared)})
        select row_number() over (order by p.first_at) - 1 as pid, {"p._g" if keyed else PKEY.format(p="p.", postcode="p.compared_postcode")} as pkey,
               {", ".join(f"p.{c}" for c in compared)},
               d.contract_id as first_contract_id, d.delivery_id as first_delivery_id, p.first_at & {mask} as first_row_number,
               p.n_records, p.last_at as last_at{", p.first_day, p.last_day" if dated else ""}{"" if keyed else ", p._g"}
        from p join deliveries d on d.d = p.first_at >> {ROW_BITS}""")
    if keyed:
        on = "using (pkey)"
    elif mem.execute("select count(*) = count(distinct _g) from profiles").fetchall()[0][0]:
        on = f"on p._g = hash({', '.join(f's.{c}' for c in compared)})"
    else:  # two profiles share a hash: joined by what is compared
        on = "on " + " and ".join(f"p.{c} is not distinct from s.{c}" for c in compared)
    mem.execute(f"""create table records as
        select cast(d.d as integer) as d, s.row_number, p.pid{", s.day" if dated else ""}
        from {source} s join deliveries d using (contract_id, delivery_id) join profiles p {on}
        order by d, row_number""")
    if not keyed:
        mem.execute("alter table profiles drop column _g")
