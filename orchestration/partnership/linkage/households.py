"""Households: which people live together, and the household id each keeps from night to night.

`assign_households` is the seam. It takes the people linked tonight (`region_persons`: each
person's records, first record and latest UPRN, postcode and surname, from `summarise_persons`)
and last night's household of their records (`prev_counts`, per profile), and returns their
household ids as the table `person_household` (person_id, household_id), moving the id sequence
on. It also leaves `persons_all`: the people whose rows tonight writes (everyone, or on an
incremental night those whose household it worked out again), with their addresses and last
night's household and opt-out flag.

Households at a date (`write_household_members`, run as the night's tables are written):

Each person's *address spells* (`spells`: where their own records, by UPRN or by an address
line matched to the gazetteer, say they lived, from when to when) place them at addresses. A
*household* is an address: everyone whose spell there covers a day is its household that day.
So a move, a new baby (no earlier than its birth) and a person leaving (their record elsewhere)
are handled by date, and a person's household for a period is the one at the period's date.

Records with only a postcode put nobody in a household: a postcode holds about fifteen
addresses, and a surname is shared across them. A person with no address record whose postcode, on a record's day, is the address's postcode (gazetteer) and whose
surname is a member's that day is listed in `identity.linkage_household_review` for a person
to check, never joined.

Written, in the linkage step's transaction, from the records as linked tonight:
- `linkage.household_members`: household_id, person_id, valid_from, valid_to (null: open),
  first_seen and last_seen (the first and last record at the address in that spell), evidence,
  and which extracts placed the person there: `sources` (the contracts of the records at the
  address in the spell: their own, or for a person joined on a shared event the member's) and
  `event_sources` (the contracts of the shared events; null otherwise). A release that names
  people decides from these which placements it may name (`releases/placement.py`).
- `identity.linkage_household_addresses`: each address's household id, kept from night to night
  (ids are never reused; an address whose people are someone's household in `linkage.persons`
  takes that id).
- `identity.linkage_household_review`: the postcode-only candidates above, and the people
  whose address line is close to an address's but not the same.
Every night writes them again from everyone's spells; the spells themselves are worked out again
only for the people whose records the night linked again (`spells`), and a record's address-line
match is kept from the night its delivery was first matched (`address_lines`).
"""

from __future__ import annotations

import duckdb
import numpy as np

from orchestration.partnership.linkage.inputs import PersonSource
from orchestration.partnership.linkage.people import assign_ids
from orchestration.partnership.linkage.spells import address_spells, mask_sql
from orchestration.partnership.linkage.state import (
    FIRST,
    HOUSEHOLD_PREFIX,
    PERSON_ADDRESS,
    STORED_PERSONS,
    STORED_RECORDS,
)


def assign_households(mem: duckdb.DuckDBPyConnection, delta: bool) -> None:
    """A person's household now: the address (UPRN) of their latest record that has one; else
    the person alone (a postcode and a surname are no evidence of living together).

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
        with keyed as (
            select p.person_id, p.records, p.previous_household, p.relinked,
                   row_number() over (order by {FIRST}) as first_rank,
                   coalesce('U:' || p.last_uprn, 'P:' || p.person_id) as household_key
            from persons_all p)
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


ADDRESS_IDS = "linkage_household_addresses"
REVIEW = "linkage_household_review"
ID_WIDTH = 9  # as cluster.assign_stable_ids


def write_household_members(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource], existing: set[str],
                            reuse_lines: bool = False, people: str | None = None,
                            people_records: str | None = None, dated_records: str | None = None,
                            postcode_days: str | None = None) -> tuple[int, int]:
    """Households at a date (see the module's docstring, second part): the three tables written
    into `wh` (attached, inside the caller's transaction) from `wh.identity.linkage_records` as
    written tonight, moving `wh.linkage.id_sequence` on for new addresses. `reuse_lines`: the lines
    of deliveries matched on an earlier night are not matched again (`address_lines`); `people`: the
    people whose records changed since the kept spells were made, and `people_records` their records as
    written tonight; `dated_records` every record as written tonight with its date and `postcode_days`
    their days per person, postcode and surname (`spells.address_spells`). Returns
    the number of records whose address line was matched and of people whose spells were worked out."""
    prefix = HOUSEHOLD_PREFIX
    next_household = int((mem.execute("select next_number from wh.linkage.id_sequence where kind = 'household'")
                          .fetchall() or [(1,)])[0][0])
    lines_matched, spells_worked_out = address_spells(mem, sources, existing, reuse_lines, people, people_records,
                                                       dated_records, postcode_days)
    mem.execute("create or replace temp table _placed as select distinct person_id from _spells")
    # An address keeps its household id; one that is someone's household in linkage.persons
    # (their latest address) takes that id; a new address takes the next number.
    stored = (f"select uprn, household_id from wh.identity.{ADDRESS_IDS}"
              if _exists(mem, "identity", ADDRESS_IDS) else
              "select cast(null as varchar) as uprn, cast(null as varchar) as household_id where false")
    mem.execute(f"""create or replace temp table _address_ids as
        with current as (select last_uprn as uprn, min(household_id) as household_id
                         from wh.identity.linkage_person_addresses where last_uprn is not null group by 1),
        addresses as (select distinct uprn from _spells)
        select a.uprn, coalesce(c.household_id, s.household_id) as household_id
        from addresses a left join current c using (uprn)
        left join (select * from ({stored}) where household_id not in (select household_id from current)) s using (uprn)""")
    added = mem.execute("select count(*) from _address_ids where household_id is null").fetchall()[0][0]
    mem.execute(f"""update _address_ids set household_id = n.id from (
            select uprn, '{prefix}' || lpad(cast({int(next_household)} - 1 + row_number() over (order by uprn) as varchar), {ID_WIDTH}, '0') as id
            from _address_ids where household_id is null) n
        where _address_ids.uprn = n.uprn""")
    mem.execute(f"""create or replace table wh.identity.{ADDRESS_IDS} as
        select uprn, household_id from _address_ids
        union all
        select s.uprn, s.household_id from ({stored}) s
        where s.uprn not in (select uprn from _address_ids) and s.household_id not in (select household_id from _address_ids)
        order by uprn""")
    _shared_events(mem, sources, existing)
    mem.execute(f"""create or replace temp table _members as
        select a.household_id, s.person_id, s.valid_from, s.valid_to, s.first_seen, s.last_seen, s.evidence,
               {_names_sql('s.source_mask', sources)} as sources, {_names_sql('s.event_mask', sources)} as event_sources
        from (select * from _spells union all by name select *, 'shared_event' as evidence from _joined) s
        join _address_ids a using (uprn)
        where s.valid_to is null or s.valid_to >= s.valid_from""")
    _write_members(mem)
    _review(mem)
    mem.execute("delete from wh.linkage.id_sequence where kind = 'household'")
    mem.execute("insert into wh.linkage.id_sequence values ('household', ?)", [next_household + int(added)])
    return lines_matched, spells_worked_out


def _write_members(mem: duckdb.DuckDBPyConnection) -> None:
    """`wh.linkage.household_members` as `_members` says: written whole the first time; after
    that only the rows of households whose rows differ (a fingerprint per household, of every
    column) are replaced, as a night changes few households and a rewrite of every row costs
    the most of the night's linkage write.

    Leaves `_membership_changed`: the households whose membership (a person's spell: person,
    start and end, not the records' dates within it) differs from the stored table's, or no
    such table when there was no stored table (everyone's is new). One pass over each side
    gives both fingerprints."""
    mem.execute("drop table if exists _membership_changed")
    if not _exists(mem, "linkage", "household_members"):
        mem.execute("""create or replace table wh.linkage.household_members as
                       select * from _members order by household_id, valid_from, person_id""")
        return
    columns = """select list((column_name, data_type) order by column_index) from duckdb_columns()
                 where database_name = ? and schema_name = ? and table_name = ?"""
    same_columns = (mem.execute(columns, ["wh", "linkage", "household_members"]).fetchall()
                    == mem.execute(columns, ["temp", "main", "_members"]).fetchall())
    rows = "sum(hash(t)::hugeint)" if same_columns else "null::hugeint"
    fingerprint = f"""select household_id, count(*) as n, {rows} as h,
                             sum(hash(person_id, valid_from, valid_to)::hugeint) as m
                      from {{}} t group by household_id"""
    mem.execute(f"""create or replace temp table _member_diff as
        select household_id, a.n is distinct from b.n or a.h is distinct from b.h as rows_differ,
               a.n is distinct from b.n or a.m is distinct from b.m as membership_differs
        from ({fingerprint.format('_members')}) a full join ({fingerprint.format('wh.linkage.household_members')}) b
        using (household_id)
        where a.n is distinct from b.n or a.h is distinct from b.h or a.m is distinct from b.m""")
    mem.execute("create temp table _membership_changed as select household_id from _member_diff where membership_differs")
    if not same_columns:  # written by other code: written whole
        mem.execute("""create or replace table wh.linkage.household_members as
                       select * from _members order by household_id, valid_from, person_id""")
        return
    mem.execute("delete from wh.linkage.household_members where household_id in (select household_id from _member_diff where rows_differ)")
    mem.execute("""insert into wh.linkage.household_members select * from _members
                   where household_id in (select household_id from _member_diff where rows_differ)
                   order by household_id, valid_from, person_id""")


def _shared_events(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource], existing: set[str]) -> None:
    """`_joined`: people with no UPRN record named in one event (a contract's `sharedEvent`
    column: a police occurrence) with a person living at an address that day, their record
    at that address's postcode and with that person's surname. They live there for the
    spell of the person they were named with (not before their birth). Someone so named with
    people of two addresses is joined to neither (and is in the review list)."""
    parts = []
    for src in sources:
        col, f = src.contract.shared_event, src.contract.freshness
        bit = mask_sql(f"'{src.id}'", sources)
        if col is None or f is None or src.contract.table not in existing:
            continue
        parts.append(f"""select r.person_id, r.postcode, r.surname, r.date_of_birth, cast(v."{f.column}" as date) as day,
                                '{src.id}:' || v."{col}" as event, {bit} as event_mask
                         from {STORED_RECORDS} r join wh.valid."{src.contract.table}" v
                           on v._delivery_id = r.delivery_id and v._row_number = r.row_number
                         where r.contract_id = '{src.id}' and v."{col}" is not null""")
    if not parts:
        mem.execute("create or replace temp table _joined as select * exclude (evidence) from _spells where false")
        return
    mem.execute(f"create or replace temp table _event_people as {' union all '.join(parts)}")
    mem.execute("""create or replace temp table _joined as
        with evidence as (
            select distinct x.person_id, s.uprn, x.day, x.date_of_birth, s.valid_from, s.valid_to, s.source_mask,
                            x.event_mask
            from _event_people x
            join _event_people m on m.event = x.event and m.person_id <> x.person_id and m.surname = x.surname
            join _spells s on s.person_id = m.person_id
             and (s.valid_from is null or s.valid_from <= x.day) and (s.valid_to is null or x.day <= s.valid_to)
            join wh.identity.linkage_address_postcodes a on a.uprn = s.uprn and a.postcode = x.postcode
            where x.person_id not in (select person_id from _placed)),
        one_address as (select person_id from evidence group by person_id having count(distinct uprn) = 1)
        select person_id, any_value(uprn) as uprn, min(day) as first_seen, max(day) as last_seen,
               greatest(min(valid_from), min(date_of_birth)) as valid_from,
               case when count(valid_to) = count(*) then max(valid_to) end as valid_to,
               bit_or(source_mask) as source_mask, bit_or(event_mask) as event_mask
        from evidence where person_id in (select person_id from one_address)
        group by person_id""")


def _review(mem: duckdb.DuckDBPyConnection) -> None:
    """People with no UPRN record, at an address's postcode on a record's day, sharing a surname
    with a member that day: for a person to check, not joined."""
    postcodes = "wh.identity.linkage_address_postcodes"
    # The records a candidate can have (a postcode and a surname, of a person placed nowhere on
    # their own records nor joined on a shared event), then the members at those postcodes with
    # their surnames.
    # Worked out per profile (identical identifiers: one postcode, surname and person for all its
    # records; `identity.linkage_profiles` as written tonight), not per record held.
    mem.execute("""create or replace temp table _unplaced as
        select pkey, person_id, postcode, surname from wh.identity.linkage_profiles
        where postcode is not null and surname is not null
          and person_id not in (select person_id from _placed) and person_id not in (select person_id from _joined)""")
    mem.execute(f"""create or replace temp table _member_keys as
        with m as (select m.household_id, m.person_id, m.valid_from, m.valid_to, a.postcode
                   from wh.linkage.household_members m
                   join wh.identity.{ADDRESS_IDS} h using (household_id)
                   join {postcodes} a on a.uprn = h.uprn
                   where a.postcode in (select postcode from _unplaced))
        select m.*, r.surname from m
        join (select distinct person_id, surname from wh.identity.linkage_profiles
              where surname is not null and person_id in (select person_id from m)) r using (person_id)""")
    # Per candidate, postcode and surname: the first and last day of their records there (kept per
    # person with the spells, `_postcode_days`), so the join with the members is one row per person
    # and key, not per record, and no record is read again.
    mem.execute("""create or replace temp table _candidates as
        select * from _postcode_days semi join (
            select distinct person_id, postcode, surname from _unplaced
            semi join (select distinct postcode, surname from _member_keys) k using (postcode, surname))
        using (person_id, postcode, surname)""")
    # And people whose address line is close to an address's but not the same (`address_lines`),
    # unless they live there on other evidence.
    mem.execute(f"""create or replace table wh.identity.{REVIEW} as
        select person_id, household_id, min(first_day) as first_day, max(last_day) as last_day,
               string_agg(distinct reason, '; ' order by reason) as reason
        from (select c.person_id, m.household_id, c.first_day, c.last_day,
                     'postcode and surname of a member, no address record' as reason
              from _candidates c join _member_keys m
                on m.postcode = c.postcode and m.surname = c.surname
               and (m.valid_from is null or m.valid_from <= c.last_day) and (m.valid_to is null or c.first_day <= m.valid_to)
              union all
              select n.person_id, a.household_id, n.first_day, n.last_day,
                     'address line close to the address, not the same' as reason
              from _line_near n join _address_ids a using (uprn)
              where (n.person_id, a.household_id) not in (select (person_id, household_id) from wh.linkage.household_members))
        group by person_id, household_id
        order by household_id, person_id""")


def _names_sql(mask: str, sources: list[PersonSource]) -> str:
    ids = sorted(s.id for s in sources)
    parts = ", ".join(f"case when {mask} & {1 << i} <> 0 then '{c}' end" for i, c in enumerate(ids))
    return f"case when {mask} is not null then string_split(concat_ws(',', {parts}), ',') end"


def _exists(mem: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(mem.execute("""select count(*) from duckdb_tables()
                               where database_name = 'wh' and schema_name = ? and table_name = ?""",
                            [schema, table]).fetchall()[0][0])
