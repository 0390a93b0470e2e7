"""Households: which people live together, and the household id each keeps from night to night.

`assign_households` is the seam. It takes the people linked tonight (`region_persons`: each
person's records, first record and latest UPRN, postcode and surname, from `summarise_persons`)
and last night's household of their records (`prev_counts`, per profile), and returns their
household ids as the table `person_household` (person_id, household_id), moving the id sequence
on. It also leaves `persons_all`: the people whose rows tonight writes (everyone, or on an
incremental night those whose household it worked out again), with their addresses and last
night's household and opt-out flag.
"""

from __future__ import annotations

import duckdb
import numpy as np

from orchestration.partnership.linkage.people import assign_ids
from orchestration.partnership.linkage.state import (
    FIRST,
    HOUSEHOLD_PREFIX,
    PERSON_ADDRESS,
    STORED_PERSONS,
)


def assign_households(mem: duckdb.DuckDBPyConnection, delta: bool) -> None:
    """A person's household: the UPRN of their latest record that has one; else the UPRN that
    people with the same surname at the same postcode have; else that surname and postcode.

    A person's household key depends on their own latest address and on the people at the
    same postcode with the same surname (the *cell*). A night linking everything works it out
    for everyone; an incremental night only for the people it may change (`_household_scope`),
    everyone else keeps last night's household, which is what everyone would get."""
    import polars as pl

    if delta:
        _household_scope(mem)
    else:
        mem.execute(f"""create table persons_all as
            select {PERSON_ADDRESS}, cast(null as varchar) as previous_household,
                   cast(null as boolean) as previous_opted_out, true as relinked from region_persons""")
        mem.execute("create view cell_members as select last_postcode, last_surname, last_uprn from persons_all")
    mem.execute(f"""create table person_grp as
        with addr_uprn as (
            select last_postcode, last_surname, min(last_uprn) as uprn from cell_members
            where last_postcode is not null and last_uprn is not null group by 1, 2 having count(distinct last_uprn) = 1),
        keyed as (
            select p.person_id, p.records, p.previous_household, p.relinked,
                   row_number() over (order by {FIRST}) as first_rank,
                   coalesce('U:' || p.last_uprn, 'U:' || au.uprn, 'A:' || p.last_postcode || '|' || p.last_surname,
                            'P:' || p.person_id) as household_key
            from persons_all p left join addr_uprn au using (last_postcode, last_surname))
        select *, dense_rank() over (order by household_key) - 1 as grp from keyed""")
    n_groups = mem.execute("select coalesce(max(grp) + 1, 0) from person_grp").fetchall()[0][0]
    # Last night's household of each record: per record for people linked again, per person otherwise.
    counts = mem.execute("""
        select grp, household_id, sum(n) from (
            select g.grp, c.household_id, sum(c.n) as n from prev_counts c join profile_person pp using (pid)
            join person_grp g on g.person_id = pp.person_id
            where c.household_id is not null group by all
            union all
            select grp, previous_household, records from person_grp where not relinked and previous_household is not null)
        group by all""").fetchall()
    first = [f[0] for f in mem.execute("select min(first_rank) from person_grp group by grp order by grp").fetchall()]
    ids = assign_ids(mem, "household", HOUSEHOLD_PREFIX, n_groups, [(g, h, int(n)) for g, h, n in counts], first)
    mem.register("_ids", pl.DataFrame({"grp": np.arange(n_groups, dtype=np.int64), "id": ids}))
    mem.execute("create table person_household as select g.person_id, i.id as household_id from person_grp g join _ids i using (grp)")
    mem.unregister("_ids")


def _household_scope(mem: duckdb.DuckDBPyConnection) -> None:
    """`persons_all`: the people whose household an incremental night works out again; and
    `cell_members`: everyone in their cells (the people a household key depends on).

    Households are assigned per household key, each key keeping the household most of its
    members' records had (`assign_stable_ids`); that assignment is independent between sets
    of people connected by a shared key or a shared household of last night. Last night every
    household was exactly one key's people. A key changes only for people linked again
    tonight and for people in a cell where someone arrived or left (its UPRN may change).
    Starting from those people, the set is closed by adding everyone sharing a UPRN key with
    them and everyone in a household of last night that any of them (or anyone who left) had:
    with last night's households being keys, that is everyone connected to them. Everyone
    else keeps their key, alone with last night's household, so keeps that household; and
    new household numbers go only to keys in the set, numbered in the same order."""
    cols = PERSON_ADDRESS
    stored = STORED_PERSONS
    mem.execute("""create table left_persons as select person_id, last_postcode, last_surname, household_id
                   from wh.identity.linkage_person_addresses where person_id in (select person_id from prev_ids)""")
    mem.execute("""create table dirty_cells as
        select distinct last_postcode, last_surname from (
            select last_postcode, last_surname from region_persons
            union all select last_postcode, last_surname from left_persons)
        where last_postcode is not null and last_surname is not null""")
    # People whose key may change: those linked again, and everyone in a cell someone entered or left.
    mem.execute(f"""create table moved as
        select {cols}, household_id as previous_household, opted_out as previous_opted_out, false as relinked
        from {stored} s semi join dirty_cells using (last_postcode, last_surname)
        union all
        select {cols}, cast(null as varchar), cast(null as boolean), true from region_persons""")
    mem.execute("""create table moved_uprns as
        with au as (select last_postcode, last_surname, min(last_uprn) as uprn from moved
                    where last_postcode is not null and last_uprn is not null group by 1, 2
                    having count(distinct last_uprn) = 1)
        select distinct coalesce(m.last_uprn, au.uprn) as uprn
        from moved m left join au using (last_postcode, last_surname) where coalesce(m.last_uprn, au.uprn) is not null""")
    mem.execute(f"""create table scope_households as
        select household_id from left_persons
        union select household_id from previous
        union select previous_household from moved
        union select household_id from {stored} s semi join moved_uprns u on u.uprn = s.last_uprn""")
    mem.execute(f"""create table persons_all as
        select * from moved
        union all
        select {cols}, household_id, opted_out, false from {stored} s
        where person_id not in (select person_id from moved)
          and (household_id in (select household_id from scope_households)
               or last_uprn in (select uprn from moved_uprns))""")
    mem.execute(f"""create table cell_members as
        select last_postcode, last_surname, last_uprn from {stored} s
        semi join (select distinct last_postcode, last_surname from persons_all) c using (last_postcode, last_surname)
        union all select last_postcode, last_surname, last_uprn from region_persons""")
