"""Records with an address line and a postcode but no UPRN, placed at a gazetteer address.

Social care, the school census, police and the hospital record a person's address as a line
(house number and street) and a postcode, not as a UPRN. The council's gazetteer (LLPG:
`reference/address_lookup.csv`) holds each UPRN's address line and postcode. A record whose
line, compared (`inputs.address_key_sql`: case, punctuation, spacing and abbreviated street
types set aside), and postcode are exactly a gazetteer address's says its person lived at that
UPRN on the record's day: the same evidence as a UPRN on the record. A postcode holds about
fifteen addresses, so anything less than the exact line is not evidence: a line with the same
house number at the postcode but a street a few letters off (a typing slip, or another street)
is listed for a person to check (`identity.linkage_household_review`), never joined.

A record's match depends only on the record (its line, postcode and date, and whether it has a
UPRN) and the gazetteer, not on whom it was linked to. So each record's match is kept,
delivery by delivery (`identity.linkage_line_matches`: contract, delivery, row, day, UPRN, exact
or near; `identity.linkage_line_deliveries`: the deliveries matched, with their rows), and a
night matches only the lines of deliveries it has not matched: new ones, or one whose rows
changed. Everything is matched again on a night that links everything, or when the gazetteer
changed. The matches are joined to tonight's people as households are worked out.

Written as temp tables for `households.write_household_members`, from the records as linked
tonight (`wh.identity.linkage_records`) and the gazetteer as written tonight:
- `_line_observed`: person_id, uprn, day, date_of_birth, contract_id (exact matches);
- `_line_near`: person_id, uprn, first_day, last_day (near matches, for review).
Both are of the given people alone when `people` is given (`spells` keeps everyone's near matches).
"""

from __future__ import annotations

import duckdb

from orchestration.partnership.linkage.inputs import PersonSource, address_key_sql
from orchestration.partnership.linkage.state import RECORD_KEYS, STORED_RECORDS

GAZETTEER = "wh.identity.linkage_address_postcodes"
NEAR_DISTANCE = 3  # letters: a typing slip, not another street name
MATCHES = "linkage_line_matches"
MATCHED = "linkage_line_deliveries"


def _columns(mem: duckdb.DuckDBPyConnection, schema: str) -> set[tuple[str, str]]:
    """(table, column) of every table of `wh.<schema>`."""
    return set(mem.execute("""select table_name, column_name from duckdb_columns()
                              where database_name = 'wh' and schema_name = ?""", [schema]).fetchall())


def _line_sources(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource], existing: set[str]) -> list[PersonSource]:
    """The person extracts whose records carry an address line (none with a gazetteer without lines)."""
    identity = _columns(mem, "identity")
    if ("linkage_address_postcodes", "address_key") not in identity:
        return []
    return [s for s in sources if s.has("address_line") and s.contract.freshness is not None
            and s.contract.table in existing and (s.contract.table, "address_line") in identity]


def _line_records_sql(sources: list[PersonSource], records: str | None = None) -> str:
    """Each record of the deliveries in `_line_todo` with an address line, a postcode and no UPRN
    (`records`: a query of every record with its UPRN and postcode, read instead of the stored ones)."""
    parts = []
    for s in sources:
        f, t = s.contract.freshness, s.contract.table
        stored = (f"(select delivery_id, row_number, uprn, postcode from {records} where contract_id = '{s.id}')" if records else
                  f"""(select k.delivery_id, k.row_number, p.uprn, p.postcode
                  from (select * from wh.identity.{RECORD_KEYS}
                        semi join (select delivery_id from _line_todo where contract_id = '{s.id}') using (delivery_id)
                        where contract_id = '{s.id}') k
                  join wh.identity.linkage_profiles p using (pkey))""")
        parts.append(f"""
            select '{s.id}' as contract_id, i._delivery_id as delivery_id, i._row_number as row_number,
                   r.postcode, cast(v."{f.column}" as date) as day, i.address_line as line
            from (select * from wh.identity."{t}" semi join (select delivery_id as _delivery_id from _line_todo
                                                              where contract_id = '{s.id}') using (_delivery_id)) i
            join wh.valid."{t}" v using (_delivery_id, _row_number)
            join {stored} r
              on r.delivery_id = i._delivery_id and r.row_number = i._row_number
            where i.address_line is not null and r.uprn is null and r.postcode is not null""")
    if not parts:
        return ("select cast(null as varchar) as contract_id, 0::bigint as delivery_id, 0::bigint as row_number, "
                "cast(null as varchar) as postcode, cast(null as date) as day, cast(null as varchar) as line where false")
    return "\nunion all\n".join(parts)


def _stored(mem: duckdb.DuckDBPyConnection) -> bool:
    tables = {t for (t,) in mem.execute("""select table_name from duckdb_tables()
                                           where database_name = 'wh' and schema_name = 'identity'""").fetchall()}
    return {MATCHES, MATCHED} <= tables


def match_address_lines(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource], existing: set[str],
                        reuse: bool = False, people: str | None = None, records: str | None = None) -> int:
    """`_line_observed` and `_line_near` (see the module's docstring), and the kept matches in `wh`
    (inside the caller's transaction). `reuse`: last night's matches of a delivery still linked
    with the same rows are kept (the gazetteer is the same); otherwise every line is matched.
    `people`: a table of some people's records (contract_id, delivery_id, row_number, person_id,
    date_of_birth, as `identity.linkage_records`); `_line_observed` and `_line_near` are then theirs
    alone (`spells`). `records`: everyone's records as `people` has them, read instead of the
    stored records (a night linking everything has them in memory).
    Returns the number of records whose line was matched tonight."""
    line_sources = _line_sources(mem, sources, existing)
    if not line_sources:  # no extract with lines, or a gazetteer without them: nothing to match, nothing kept
        mem.execute("create or replace temp table _line_observed (person_id varchar, uprn varchar, day date, date_of_birth date, contract_id varchar)")
        mem.execute("create or replace temp table _line_near (person_id varchar, uprn varchar, first_day date, last_day date)")
        return 0
    ids = ", ".join(f"'{s.id}'" for s in line_sources)
    mem.execute(f"""create or replace temp table _line_current as select contract_id, delivery_id, records
                    from wh.identity.linkage_deliveries where contract_id in ({ids})""")
    reuse = reuse and _stored(mem)
    if reuse:
        mem.execute(f"""create or replace temp table _line_kept as
            select contract_id, delivery_id from wh.identity.{MATCHED} semi join _line_current using (contract_id, delivery_id, records)""")
    else:
        mem.execute("create or replace temp table _line_kept (contract_id varchar, delivery_id bigint)")
    mem.execute("create or replace temp table _line_todo as select * from _line_current anti join _line_kept using (contract_id, delivery_id)")
    # One row per record; the line is compared once per spelling and postcode.
    mem.execute(f"create or replace temp table _lines as select * from ({_line_records_sql(line_sources, records)}) where day is not null")
    mem.execute(f"""create or replace temp table _line_keys as
        select line, {address_key_sql('line')} as address_key from (select distinct line from _lines)""")
    mem.execute(f"""create or replace temp table _line_match as
        with keyed as (select distinct l.postcode, k.line, k.address_key
                       from (select distinct postcode, line from _lines) l join _line_keys k using (line)
                       where k.address_key is not null)
        select k.postcode, k.line, g.uprn, true as exact
        from keyed k join {GAZETTEER} g on g.postcode = k.postcode and g.address_key = k.address_key
        union all
        select k.postcode, k.line, g.uprn, false
        from keyed k join {GAZETTEER} g
          on g.postcode = k.postcode and split_part(g.address_key, ' ', 1) = split_part(k.address_key, ' ', 1)
         and g.address_key <> k.address_key and levenshtein(g.address_key, k.address_key) <= {NEAR_DISTANCE}
        where not exists (select 1 from {GAZETTEER} e where e.postcode = k.postcode and e.address_key = k.address_key)""")
    new = """select l.contract_id, l.delivery_id, l.row_number, l.day, m.uprn, m.exact
             from _lines l join _line_match m using (postcode, line)"""
    if reuse:
        # The matches of deliveries matched before and not kept (usually none: then the stored
        # matches are not read at all), rather than every match tested against the kept deliveries.
        mem.execute(f"""delete from wh.identity.{MATCHES} where (contract_id, delivery_id) in
                        (select (contract_id, delivery_id) from (select contract_id, delivery_id from wh.identity.{MATCHED}
                                                                 except select contract_id, delivery_id from _line_kept))""")
        mem.execute(f"insert into wh.identity.{MATCHES} {new}")
    else:
        mem.execute(f"create or replace table wh.identity.{MATCHES} as {new}")
    mem.execute(f"create or replace table wh.identity.{MATCHED} as select * from _line_current order by contract_id, delivery_id")
    # The people's records first (a few), then their matches: not every match joined with every record.
    # Everyone's: a view, each use joining only its kind of match (not a copy of every match).
    mem.execute(f"""create or replace temp {'table' if people else 'view'} _line_people as
        select r.person_id, r.date_of_birth, r.contract_id, m.uprn, m.day, m.exact
        from wh.identity.{MATCHES} m join {people or records or STORED_RECORDS} r using (contract_id, delivery_id, row_number)""")
    mem.execute("""create or replace temp table _line_observed as
        select person_id, uprn, day, date_of_birth, contract_id from _line_people where exact""")
    mem.execute("""create or replace temp table _line_near as
        select person_id, uprn, min(day) as first_day, max(day) as last_day from _line_people where not exact group by all""")
    mem.execute(f"drop {'table' if people else 'view'} _line_people")
    return int(mem.execute("select count(*) from _lines").fetchall()[0][0])
