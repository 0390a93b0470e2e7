"""Households at a date: who lives at one address when, as the records say.

A record that carries a UPRN and a date (the contract's dated column: its freshness column)
says its person lived at that address that day. A person's records with a UPRN, in date
order, give their *address spells*: they live at an address from the day of its first record
of a run (the first spell from their date of birth, as nothing earlier is known) until the day
before a record puts them at another address; the last spell has no end. A *household* is an
address: everyone whose spell there covers a day is its household that day. So a move, a new
baby (no earlier than its birth) and a person leaving (their record elsewhere) are handled by
date, and a person's household for a period is the one at the period's date.

Records with only a postcode (health, police, schools) put nobody in a household: a postcode
holds about fifteen addresses, and a surname is shared across them. A person with no UPRN
record whose postcode, on a record's day, is the address's postcode (gazetteer) and whose
surname is a member's that day is listed in `identity.linkage_household_review` for a person
to check, never joined.

Written, in the linkage step's transaction, from the records as linked tonight:
- `linkage.household_members`: household_id, person_id, valid_from, valid_to (null: open),
  first_seen and last_seen (the first and last record at the address in that spell).
- `identity.linkage_household_addresses`: each address's household id, kept from night to night
  (ids are never reused; an address whose people are someone's household in `linkage.persons`
  takes that id).
- `identity.linkage_household_review`: the postcode-only candidates above.
Every night works them out again from every dated address record: a few percent of all
records, so this is a fraction of the linkage step.
"""

from __future__ import annotations

import duckdb

from orchestration.partnership.linkage.inputs import PersonSource

ADDRESS_IDS = "linkage_household_addresses"
REVIEW = "linkage_household_review"
ID_WIDTH = 9  # as cluster.assign_stable_ids


def dated_records_sql(sources: list[PersonSource], existing: set[str], db: str = "wh.") -> str:
    """(contract_id, delivery_id, row_number, day) of every valid row with a dated column."""
    parts = []
    for s in sources:
        f = s.contract.freshness
        if f is None or s.contract.table not in existing:
            continue
        parts.append(f"""select '{s.id}' as contract_id, _delivery_id as delivery_id, _row_number as row_number,
                                cast("{f.column}" as date) as day from {db}valid."{s.contract.table}" """)
    if not parts:
        return "select cast(null as varchar) as contract_id, 0::bigint as delivery_id, 0::bigint as row_number, cast(null as date) as day where false"
    return "\nunion all\n".join(parts)


def write_households(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource], existing: set[str],
                     next_household: int, prefix: str) -> int:
    """Write the three tables into `wh` (attached, inside the caller's transaction), from
    `wh.identity.linkage_records` as written tonight. Returns the next free household number."""
    with_uprn = [s for s in sources if s.has("uprn")]
    mem.execute(f"""create or replace temp table _observed as
        select r.person_id, r.uprn, d.day, r.date_of_birth
        from wh.identity.linkage_records r
        join ({dated_records_sql(with_uprn, existing)}) d using (contract_id, delivery_id, row_number)
        where r.uprn is not null and d.day is not null""")
    # Runs of one address in each person's records by date; a run begins where the address
    # differs from the record before. Two addresses on one day: ordered by UPRN.
    mem.execute("""create or replace temp table _spells as
        with o as (select person_id, uprn, day, min(date_of_birth) as dob from _observed group by all),
        marked as (select *, lag(uprn) over w is distinct from uprn as starts,
                          count(*) over (partition by person_id) as n
                   from o window w as (partition by person_id order by day, uprn)),
        runs as (select *, sum(starts::int) over (partition by person_id order by day, uprn
                                                   rows unbounded preceding) as run from marked),
        spans as (select person_id, run, any_value(uprn) as uprn, min(day) as first_seen, max(day) as last_seen,
                         min(dob) as dob from runs group by person_id, run)
        select person_id, uprn, first_seen, last_seen,
               case when run = 1 then least(dob, first_seen) else first_seen end as valid_from,
               cast(lead(first_seen) over (partition by person_id order by run) - 1 as date) as valid_to
        from spans""")
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
    mem.execute("""create or replace table wh.linkage.household_members as
        select a.household_id, s.person_id, s.valid_from, s.valid_to, s.first_seen, s.last_seen
        from _spells s join _address_ids a using (uprn)
        where s.valid_to is null or s.valid_to >= s.valid_from
        order by household_id, valid_from, person_id""")
    _review(mem, sources, existing)
    return next_household + int(added)


def _review(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource], existing: set[str]) -> None:
    """People with no UPRN record, at an address's postcode on a record's day, sharing a surname
    with a member that day: for a person to check, not joined."""
    postcodes = "wh.identity.linkage_address_postcodes"
    mem.execute(f"""create or replace table wh.identity.{REVIEW} as
        with candidates as (
            select r.person_id, r.surname, r.postcode, d.day
            from wh.identity.linkage_records r
            join ({dated_records_sql(sources, existing)}) d using (contract_id, delivery_id, row_number)
            where r.postcode is not null and r.surname is not null and d.day is not null
              and r.person_id not in (select person_id from _observed)),
        members as (
            select m.household_id, m.person_id, m.valid_from, m.valid_to, a.postcode, r.surname
            from wh.linkage.household_members m
            join wh.identity.{ADDRESS_IDS} h using (household_id)
            join {postcodes} a on a.uprn = h.uprn
            join (select distinct person_id, surname from wh.identity.linkage_records where surname is not null) r
              on r.person_id = m.person_id)
        select c.person_id, m.household_id, min(c.day) as first_day, max(c.day) as last_day,
               'postcode and surname of a member, no address record' as reason
        from candidates c join members m
          on m.postcode = c.postcode and m.surname = c.surname
         and (m.valid_from is null or m.valid_from <= c.day) and (m.valid_to is null or c.day <= m.valid_to)
        group by c.person_id, m.household_id
        order by m.household_id, c.person_id""")


def _exists(mem: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(mem.execute("""select count(*) from duckdb_tables()
                               where database_name = 'wh' and schema_name = ? and table_name = ?""",
                            [schema, table]).fetchall()[0][0])
