"""Households at a date from a handful of records: moves, a baby, a person joined by a shared
police occurrence, and one who only shares a postcode and a surname (listed, not joined)."""

from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.linkage.households import write_household_members
from orchestration.partnership.linkage.inputs import person_sources

pytestmark = pytest.mark.dbt_free

CSC = "county_council__children_social_care_referrals"  # UPRN, dated by referral_datetime
POLICE = "county_police__incidents"  # postcode only; occurrence_id is its shared event
A, B = "100000000001", "100000000002"  # two addresses of postcode RV1 1AA


def _warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    mem = duckdb.connect()
    mem.execute(f"attach '{tmp_path / 'wh.duckdb'}' as wh")
    for schema in ("identity", "linkage", "valid"):
        mem.execute(f"create schema wh.{schema}")
    # person, contract, row, uprn, postcode, surname, date of birth, day, occurrence
    records = [
        ("LP1", CSC, 1, A, "RV1 1AA", "smith", date(2010, 5, 1), date(2025, 1, 10), None),   # child at A ...
        ("LP1", CSC, 2, B, "RV1 1AA", "smith", date(2010, 5, 1), date(2025, 9, 1), None),    # ... moves to B
        ("LP2", CSC, 3, A, "RV1 1AA", "smith", date(2012, 2, 1), date(2025, 3, 1), None),    # sibling stays at A
        ("LP3", CSC, 4, B, "RV1 1AA", "smith", date(2025, 6, 1), date(2025, 10, 1), None),   # baby born at B
        ("LP4", POLICE, 1, None, "RV1 1AA", "smith", date(1985, 1, 1), date(2025, 10, 5), "OCC1"),  # parent, with LP1
        ("LP1", POLICE, 2, None, "RV1 1AA", "smith", date(2010, 5, 1), date(2025, 10, 5), "OCC1"),
        ("LP5", POLICE, 3, None, "RV1 1AA", "smith", date(1990, 1, 1), date(2025, 10, 6), "OCC2"),  # same postcode and surname only
        ("LP6", POLICE, 4, None, "RV9 9ZZ", "smith", date(1988, 1, 1), date(2025, 10, 5), "OCC1"),  # in the occurrence, elsewhere
    ]
    mem.execute("""create table _records (contract_id varchar, delivery_id bigint, row_number bigint,
                   person_id varchar, household_id varchar, uprn varchar, postcode varchar, surname varchar,
                   date_of_birth date)""")
    mem.execute(f'create table wh.valid."{CSC}" (_delivery_id bigint, _row_number bigint, referral_datetime timestamp)')
    mem.execute(f'create table wh.valid."{POLICE}" (_delivery_id bigint, _row_number bigint, '
                'occurrence_datetime timestamp, occurrence_id varchar)')
    for person, contract, row, uprn, postcode, surname, dob, day, occ in records:
        mem.execute("insert into _records values (?, 1, ?, ?, null, ?, ?, ?, ?)",
                    [contract, row, person, uprn, postcode, surname, dob])
        if contract == CSC:
            mem.execute(f'insert into wh.valid."{CSC}" values (1, ?, ?)', [row, day])
        else:
            mem.execute(f'insert into wh.valid."{POLICE}" values (1, ?, ?, ?)', [row, day, occ])
    # Each record's key and profile (identical identifiers), and the profiles with their person
    # and identifiers, as the write leaves them.
    mem.execute("alter table _records add column pkey varchar")
    mem.execute("update _records set pkey = md5(concat_ws('|', uprn, postcode, surname, date_of_birth))")
    mem.execute("""create table wh.identity.linkage_record_keys as
                   select contract_id, delivery_id, row_number, pkey from _records""")
    mem.execute("""create table wh.identity.linkage_profiles as
                   select distinct pkey, person_id, null::varchar as nhs_number, null::varchar as upn, uprn,
                          null::varchar as local_id, null::varchar as forename, surname, date_of_birth,
                          null::varchar as sex, postcode from _records""")
    mem.execute("create table wh.identity.linkage_person_addresses (person_id varchar, last_uprn varchar, household_id varchar)")
    mem.execute(f"insert into wh.identity.linkage_person_addresses values ('LP2', '{A}', 'LH000000007')")
    mem.execute(f"create table wh.identity.linkage_address_postcodes as select unnest(['{A}', '{B}']) as uprn, 'RV1 1AA' as postcode")
    mem.execute("create table wh.linkage.id_sequence as select 'household' as kind, 20 as next_number")
    return mem


def _household_on(mem, person: str, day: date) -> str | None:
    rows = mem.execute("""select a.uprn from wh.linkage.household_members m
                          join wh.identity.linkage_household_addresses a using (household_id)
                          where m.person_id = ? and (m.valid_from is null or m.valid_from <= ?)
                            and (m.valid_to is null or ? <= m.valid_to)""", [person, day, day]).fetchall()
    assert len(rows) <= 1
    return rows[0][0] if rows else None


def test_households_follow_moves_births_and_shared_occurrences_but_not_postcode_and_surname(tmp_path):
    mem = _warehouse(tmp_path)
    contracts = load_contracts(Path("contracts/agencies"))
    sources = [s for s in person_sources(contracts) if s.id in (CSC, POLICE)]
    write_household_members(mem, sources, {CSC, POLICE})

    # the child lived at A until the day before the record at B, at B since
    assert _household_on(mem, "LP1", date(2025, 6, 30)) == A
    assert _household_on(mem, "LP1", date(2025, 8, 31)) == A
    assert _household_on(mem, "LP1", date(2025, 9, 1)) == B
    assert _household_on(mem, "LP2", date(2025, 12, 31)) == A
    # a baby is in no household before its birth
    assert _household_on(mem, "LP3", date(2025, 5, 31)) is None
    assert _household_on(mem, "LP3", date(2025, 6, 1)) == B
    # named in one occurrence with the child, at the postcode, same surname: joins the child's household
    assert _household_on(mem, "LP4", date(2025, 12, 31)) == B
    evidence = dict(mem.execute("select person_id, evidence from wh.linkage.household_members").fetchall())
    assert evidence["LP4"] == "shared_event" and evidence["LP2"] == "address"
    # only a postcode and a surname: in no household, listed for review; elsewhere: neither
    assert _household_on(mem, "LP5", date(2025, 12, 31)) is None
    assert _household_on(mem, "LP6", date(2025, 12, 31)) is None
    review = mem.execute("select person_id from wh.identity.linkage_household_review").fetchall()
    assert ("LP5",) in review and ("LP4",) not in review and ("LP6",) not in review
    # an address someone lives at now keeps that household's id; another takes the next number
    ids = dict(mem.execute("select uprn, household_id from wh.identity.linkage_household_addresses").fetchall())
    assert ids == {A: "LH000000007", B: "LH000000020"}
    assert mem.execute("select next_number from wh.linkage.id_sequence").fetchall() == [(21,)]
