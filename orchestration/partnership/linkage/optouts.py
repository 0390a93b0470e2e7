"""Opt-outs: a person is flagged when any of their records carries an NHS number on the
national data opt-out list."""

from __future__ import annotations

import duckdb

from orchestration.partnership.linkage.state import PERSON_ADDRESS, STORED_PERSONS


def flag_opt_outs(mem: duckdb.DuckDBPyConnection, delta: bool) -> None:
    """Flagged once, on the person: any of their records carries an NHS number on the list.

    The list is a full snapshot, so every person is checked against it (a join of the list with
    the stored profiles); an incremental night then carries only the people whose flag
    changed, beside those whose household was worked out again."""
    stored = """union all select nhs_number, person_id from wh.identity.linkage_profiles
                where component not in (select component from region_components)""" if delta else ""
    mem.execute(f"""create table opted_out_persons as
        select distinct person_id from (
            select p.nhs_number, pp.person_id from profiles p join profile_person pp using (pid) {stored})
        join opt_outs using (nhs_number)""")
    flag_changed = f"""
        union all
        select {PERSON_ADDRESS}, household_id as previous_household, opted_out as previous_opted_out,
               false as relinked, household_id, not opted_out
        from {STORED_PERSONS} s
        where person_id not in (select person_id from person_household)
          and opted_out <> (person_id in (select person_id from opted_out_persons))""" if delta else ""
    mem.execute(f"""create or replace table persons_all as
        select a.*, h.household_id, o.person_id is not null as opted_out
        from persons_all a join person_household h using (person_id) left join opted_out_persons o using (person_id)
        {flag_changed}""")
