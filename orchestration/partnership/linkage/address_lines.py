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

Written as temp tables for `households.write_household_members`, from the records as linked
tonight (`wh.identity.linkage_records`) and the gazetteer as written tonight:
- `_line_observed`: person_id, uprn, day, date_of_birth, contract_id (exact matches);
- `_line_near`: person_id, uprn, first_day, last_day (near matches, for review).
"""

from __future__ import annotations

import duckdb

from orchestration.partnership.linkage.inputs import PersonSource, address_key_sql

GAZETTEER = "wh.identity.linkage_address_postcodes"
NEAR_DISTANCE = 3  # letters: a typing slip, not another street name


def _columns(mem: duckdb.DuckDBPyConnection, schema: str) -> set[tuple[str, str]]:
    """(table, column) of every table of `wh.<schema>`."""
    return set(mem.execute("""select table_name, column_name from duckdb_columns()
                              where database_name = 'wh' and schema_name = ?""", [schema]).fetchall())


def _line_records_sql(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource], existing: set[str]) -> str:
    identity = _columns(mem, "identity")
    if ("linkage_address_postcodes", "address_key") not in identity:  # a gazetteer without address lines
        sources = []
    parts = []
    for s in sources:
        f, t = s.contract.freshness, s.contract.table
        if not s.has("address_line") or f is None or t not in existing or (t, "address_line") not in identity:
            continue
        parts.append(f"""
            select r.person_id, r.date_of_birth, r.postcode, cast(v."{f.column}" as date) as day,
                   i.address_line as line, '{s.id}' as contract_id
            from wh.identity."{t}" i
            join wh.valid."{t}" v using (_delivery_id, _row_number)
            join (select * from wh.identity.linkage_records where contract_id = '{s.id}') r
              on r.delivery_id = i._delivery_id and r.row_number = i._row_number
            where i.address_line is not null and r.uprn is null and r.postcode is not null""")
    if not parts:
        return ("select cast(null as varchar) as person_id, cast(null as date) as date_of_birth, "
                "cast(null as varchar) as postcode, cast(null as date) as day, cast(null as varchar) as line, "
                "cast(null as varchar) as contract_id where false")
    return "\nunion all\n".join(parts)


def match_address_lines(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource], existing: set[str]) -> None:
    """`_line_observed` and `_line_near` (see the module's docstring)."""
    # One row per person, postcode, line as written and day; the line is compared once per spelling.
    mem.execute(f"""create or replace temp table _lines as
        select person_id, postcode, line, day, contract_id, min(date_of_birth) as date_of_birth
        from ({_line_records_sql(mem, sources, existing)}) where day is not null group by all""")
    if not mem.execute("select count(*) from _lines").fetchall()[0][0]:
        mem.execute("create or replace temp table _line_observed (person_id varchar, uprn varchar, day date, date_of_birth date, contract_id varchar)")
        mem.execute("create or replace temp table _line_near (person_id varchar, uprn varchar, first_day date, last_day date)")
        return
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
    mem.execute("""create or replace temp table _line_observed as
        select l.person_id, m.uprn, l.day, l.date_of_birth, l.contract_id
        from _lines l join _line_match m using (postcode, line) where m.exact""")
    mem.execute("""create or replace temp table _line_near as
        select l.person_id, m.uprn, min(l.day) as first_day, max(l.day) as last_day
        from _lines l join _line_match m using (postcode, line) where not m.exact group by all""")
