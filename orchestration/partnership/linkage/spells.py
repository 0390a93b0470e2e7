"""Each person's address spells: where their own records say they lived, from when to when.

A record that carries a UPRN and a date (the contract's dated column: its freshness column)
says its person lived at that address that day; so does a record with no UPRN whose address
line and postcode are exactly a gazetteer address's (`address_lines`). A person's address
records, in date order, give their *address spells*: they live at an address from the day of
its first record of a run (the first spell from their date of birth, as nothing earlier is
known) until the day before a record puts them at another address; the last spell has no end.
A one-day address from an address line alone between or beside runs at an address of the same
postcode is a mistyped house number, not a move (set aside), and a record at another postcode
bounds a spell (`_bound_by_other_postcodes`).

A person's spells depend on that person's records alone (and the gazetteer and the contracts'
dated columns). So they are kept (`identity.linkage_spells`, with the description of the
sources they were read with in `identity.linkage_spell_state`), and an incremental night works
out again only the spells of the people whose records it linked again (last night's people of
the groups it linked and tonight's: `prev_ids`, `persons_all.relinked`); a person no longer
linked loses theirs. Every spell is worked out again on a night that links everything, or when
the kept spells were made from other sources.

Leaves the temp tables `_spells` (person_id, uprn, first_seen, last_seen, source_mask, event_mask,
evidence, valid_from, valid_to: everyone's, a spell whose bounds cross included) and `_line_near`
(everyone's near address-line matches, kept in `identity.linkage_line_near` the same way) and
`_postcode_days` (everyone's first and last record day per postcode and surname, kept in
`identity.linkage_postcode_days`) for `households.write_household_members`.
"""

from __future__ import annotations

import json

import duckdb

from orchestration.partnership.linkage.address_lines import match_address_lines
from orchestration.partnership.linkage.inputs import PersonSource
from orchestration.partnership.linkage.state import STORED_RECORDS

SPELLS = "linkage_spells"
SPELL_STATE = "linkage_spell_state"
# Each person's address lines close to an address's but not the same (`address_lines`), for the
# household review: like spells, a person's depend on their records alone, so they are kept too.
NEAR = "linkage_line_near"
# Each person's first and last record day at each postcode under each surname, for the household
# review's postcode-and-surname candidates: also the person's records' alone, so kept the same way.
POSTCODE_DAYS = "linkage_postcode_days"
_COLUMNS = "person_id, uprn, first_seen, last_seen, source_mask, event_mask, evidence, valid_from, valid_to"


def record_days_sql(records: str, sources: list[PersonSource], existing: set[str]) -> str:
    """Every column of `records` (a table with contract_id, delivery_id, row_number) with `day`, the
    record's dated column (the contract's freshness column), for the records of extracts with
    one: each extract's valid rows are looked up for the given records only, so the cost follows
    them, not every record held."""
    parts = [f"""select r.*, cast(v."{s.contract.freshness.column}" as date) as day
                 from (select * from {records} where contract_id = '{s.id}') r
                 join wh.valid."{s.contract.table}" v on v._delivery_id = r.delivery_id and v._row_number = r.row_number"""
             for s in sources if s.contract.freshness is not None and s.contract.table in existing]
    if not parts:
        return f"select *, cast(null as date) as day from {records} where false"
    return "\nunion all\n".join(parts)


# Which extracts placed a person at an address, carried as one bit per extract (in id order) while
# spells are worked out, and written as the list of their ids.
def mask_sql(expr: str, sources: list[PersonSource]) -> str:
    ids = sorted(s.id for s in sources)
    assert len(ids) < 63
    return "cast(case " + expr + " " + " ".join(f"when '{c}' then {1 << i}" for i, c in enumerate(ids)) + " end as bigint)"


def ids_sql(sources: list[PersonSource]) -> str:
    return ", ".join(f"'{s.id}'" for s in sources) or "null"


# Runs of one address in each person's records by date (`_observed`); a run begins where the
# address differs from the record before. Two addresses on one day: ordered by UPRN.
_SPANS = """o as (select person_id, uprn, day, min(date_of_birth) as dob, bool_and(by_line) as by_line,
                          bit_or(source_mask) as source_mask
                   from _observed group by person_id, uprn, day),
        marked as (select *, lag(uprn) over w is distinct from uprn as starts
                   from o window w as (partition by person_id order by day, uprn)),
        runs as (select *, sum(starts::int) over (partition by person_id order by day, uprn
                                                   rows unbounded preceding) as run from marked),
        spans as (select person_id, run, any_value(uprn) as uprn, min(day) as first_seen, max(day) as last_seen,
                         min(dob) as dob, bool_and(by_line) as by_line,
                         bit_or(source_mask) as source_mask
                  from runs group by person_id, run)"""


def _sources_key(sources: list[PersonSource], existing: set[str]) -> str:
    """What the spells were read with: each person extract's table, dated column and whether it
    carries a UPRN or an address line (a change there changes everyone's spells)."""
    return json.dumps(sorted((s.id, s.contract.table, s.contract.freshness.column if s.contract.freshness else None,
                              s.has("uprn"), s.has("address_line"), s.contract.table in existing) for s in sources))


def _kept(mem: duckdb.DuckDBPyConnection, key: str) -> bool:
    found = {t for (t,) in mem.execute("""select table_name from duckdb_tables()
                                          where database_name = 'wh' and schema_name = 'identity'""").fetchall()}
    return ({SPELLS, SPELL_STATE, NEAR, POSTCODE_DAYS} <= found
            and mem.execute(f"select sources from wh.identity.{SPELL_STATE}").fetchall() == [(key,)])


def address_spells(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource], existing: set[str],
                   reuse_lines: bool = False, people: str | None = None,
                   people_records: str | None = None, dated_records: str | None = None,
                   postcode_days: str | None = None) -> tuple[int, int]:
    """`_spells` (see the module's docstring), and the kept spells in `wh` (inside the caller's
    transaction). `people`: a query of the person ids whose records changed since the kept
    spells were made (None: everyone's are worked out); `people_records`: a query of every record
    those people have as written tonight (the columns of `identity.linkage_records`), read instead
    of the stored table; `dated_records`: when everyone's are worked out, a query of every record
    as written tonight with its date (`day`: as `record_days_sql` gives it), read instead of the
    stored table and the valid tables, with `postcode_days` a query giving `_postcode_days` (from
    the profiles' first and last days). `reuse_lines` as in `address_lines`.
    Returns the number of records whose address line was matched tonight, and of the people
    whose spells were worked out (on a night that works out everyone's, those with a spell)."""
    key = _sources_key(sources, existing)
    if people is not None and not _kept(mem, key):
        people = None
    mem.execute("create or replace temp table _spell_people (person_id varchar)")
    if people is not None:
        mem.execute(f"insert into _spell_people select distinct person_id from ({people}) where person_id is not null")
    scope = "" if people is None else "semi join _spell_people using (person_id)"
    with_uprn = [s for s in sources if s.has("uprn")]
    # The records of the people worked out, read once: a few, kept as a table, or everyone's, read
    # where used (a view: not another copy of most records).
    kind = "view" if people is None else "table"
    dated = people is None and dated_records is not None
    stored = (f"({people_records})" if people is not None and people_records is not None
              else f"({dated_records})" if dated else STORED_RECORDS)
    mem.execute(f"""create or replace temp {kind} _people_records as
        select contract_id, delivery_id, row_number, person_id, uprn, postcode, surname, date_of_birth{", day" if dated else ""}
        from {stored} {scope}""")
    lines_matched = match_address_lines(mem, sources, existing, reuse_lines, None if people is None else "_people_records",
                                        records="_people_records" if dated else None)
    # Each record's date, for its UPRN and its postcode: read with the records, or for a few
    # people's records looked up once (each lookup joins every extract's valid table).
    if dated:
        mem.execute("create or replace temp view _people_days as select * from _people_records where day is not null")
    else:
        mem.execute(f"""create or replace temp {kind} _people_days as
            select * from ({record_days_sql('_people_records', sources, existing)}) where day is not null""")
    uprn_days = f"select * from _people_days where contract_id in ({ids_sql(with_uprn)}) and uprn is not null"
    mem.execute(f"""create or replace temp table _observed as
        select r.person_id, r.uprn, r.day, r.date_of_birth, false as by_line, {mask_sql('r.contract_id', sources)} as source_mask
        from ({uprn_days}) r
        where r.day is not null
        union all
        select person_id, uprn, day, date_of_birth, true, {mask_sql('contract_id', sources)} from _line_observed""")
    mem.execute(f"create or replace temp table _spans as with {_SPANS} select * from spans")
    # A neighbour's address for one day, between or beside runs at an address of the same
    # postcode, from address lines alone: a mistyped house number, not a move. Its records are
    # set aside and the runs of the few people who had one are worked out again.
    mem.execute("""create or replace temp table _slips as
        with p as (select s.*, a.postcode, lag(a.postcode) over w as before_postcode,
                          lead(a.postcode) over w as after_postcode
                   from _spans s left join wh.identity.linkage_address_postcodes a using (uprn)
                   window w as (partition by person_id order by run))
        select person_id, uprn, first_seen as day from p
        where by_line and first_seen = last_seen and (before_postcode = postcode or after_postcode = postcode)""")
    mem.execute("""delete from _observed where by_line
                   and (person_id, uprn, day) in (select (person_id, uprn, day) from _slips)""")
    mem.execute("delete from _spans where person_id in (select person_id from _slips)")
    mem.execute(f"""insert into _spans with {_SPANS.replace("from _observed", "from _observed semi join _slips using (person_id)")}
                    select * from spans""")
    mem.execute("""create or replace temp table _spells as
        select person_id, uprn, first_seen, last_seen, source_mask, cast(null as bigint) as event_mask,
               case when by_line then 'address_line' else 'address' end as evidence,
               case when run = 1 then least(dob, first_seen) else first_seen end as valid_from,
               cast(lead(first_seen) over (partition by person_id order by run) - 1 as date) as valid_to
        from _spans""")
    _bound_by_other_postcodes(mem)
    if not (dated and postcode_days):
        postcode_days = """select person_id, postcode, surname, min(day) as first_day, max(day) as last_day
                           from _people_days where postcode is not null and surname is not null group by all"""
    mem.execute(f"create or replace temp table _postcode_days as {postcode_days}")
    worked_out = mem.execute(f"select count(distinct person_id) from {'_spells' if people is None else '_spell_people'}").fetchall()[0][0]
    if people is None:
        mem.execute(f"create or replace table wh.identity.{SPELLS} as select {_COLUMNS} from _spells order by person_id, valid_from")
        mem.execute(f"create or replace table wh.identity.{SPELL_STATE} as select ? as sources", [key])
        mem.execute(f"create or replace table wh.identity.{NEAR} as select * from _line_near order by person_id, uprn")
        mem.execute(f"create or replace table wh.identity.{POSTCODE_DAYS} as select * from _postcode_days")
    else:
        for table, columns, new in ((SPELLS, _COLUMNS, "_spells"), (NEAR, "*", "_line_near"),
                                    (POSTCODE_DAYS, "*", "_postcode_days")):
            mem.execute(f"delete from wh.identity.{table} where person_id in (select person_id from _spell_people)")
            mem.execute(f"insert into wh.identity.{table} select {columns} from {new}")
            mem.execute(f"create or replace temp table {new} as select {columns} from wh.identity.{table}")
    return lines_matched, int(worked_out)


def _bound_by_other_postcodes(mem: duckdb.DuckDBPyConnection) -> None:
    """A record at another postcode says its person did not live at the address that day: a
    spell starts no earlier than the day after the person's last such record before its first
    record there (a family that moved in), and ends no later than the day before their first
    such record after its last (a person who moved out before a record there says so)."""
    mem.execute("""create or replace temp table _elsewhere as
        select person_id, postcode, day from _people_days
        where postcode is not null and person_id in (select person_id from _spells)""")
    mem.execute("""create or replace temp table _spells as
        with s as (select s.*, a.postcode as address_postcode
                   from _spells s left join wh.identity.linkage_address_postcodes a using (uprn)),
        bounds as (select s.person_id, s.first_seen,
                          max(e.day) filter (where e.day < s.first_seen) as before_day,
                          min(e.day) filter (where e.day > s.last_seen) as after_day
                   from s join _elsewhere e on e.person_id = s.person_id and e.postcode <> s.address_postcode
                   group by all)
        select s.person_id, s.uprn, s.first_seen, s.last_seen, s.source_mask, s.event_mask, s.evidence,
               greatest(s.valid_from, cast(b.before_day + 1 as date)) as valid_from,
               least(s.valid_to, cast(b.after_day - 1 as date)) as valid_to
        from s left join bounds b using (person_id, first_seen)""")
