"""Reading a night's input: the gazetteer and opt-out list, whether last night's stored state
can be carried forward, and the valid person records (all of them, or only those of deliveries
linkage has not seen) with last night's ids."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import duckdb

import orchestration.partnership.linkage.model as splink_model
from orchestration.partnership.linkage.inputs import (
    OPT_OUT_CONTRACT,
    PersonSource,
    address_postcodes_sql,
    nhs_sql,
    records_sql,
)
from orchestration.partnership.linkage.state import (
    ADDRESS_TABLE,
    DELTA_TABLES,
    IDENT,
    KEY,
    PKEY,
    RECORD_KEYS,
    SCORING_VERSION,
    STATE_TABLES,
    STATE_VERSION,
    tables,
)
from orchestration.partnership.settings import Settings


def read_reference(mem: duckdb.DuckDBPyConnection, settings: Settings) -> tuple[str, bool]:
    """The address gazetteer and the opt-out list; returns the gazetteer's digest ('' if none)
    and whether its UPRN -> postcode table was read from last night's copy."""
    # The address gazetteer, to compare records that carry a UPRN but no postcode (fire).
    # Normalising it is costly at scale, so last night's copy (`ADDRESS_TABLE`, written with the
    # state that records the digest it was made from) serves while the file is the same.
    lookup = settings.reference_dir / "address_lookup.csv"
    digest = hashlib.sha256(lookup.read_bytes()).hexdigest() if lookup.exists() else ""
    cached = (ADDRESS_TABLE in tables(mem, "wh", "identity") and "linkage_state" in tables(mem, "wh", "identity")
              and mem.execute("select state_version, gazetteer_sha256 from wh.identity.linkage_state").fetchall()
              == [(STATE_VERSION, digest)])
    if cached:
        mem.execute(f"create table address_postcodes as select uprn, postcode, address_key from wh.identity.{ADDRESS_TABLE}")
    elif lookup.exists():
        with lookup.open(encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), [])
        mem.execute(f"create table address_postcodes as {address_postcodes_sql(str(lookup), 'address_line' in header)}")
    else:
        mem.execute("create table address_postcodes (uprn varchar, postcode varchar, address_key varchar)")
    # The national data opt-out list is a monthly full snapshot: only its latest accepted delivery counts.
    if OPT_OUT_CONTRACT in tables(mem, "wh", "valid") and OPT_OUT_CONTRACT in tables(mem, "wh", "identity"):
        mem.execute(f"""create table opt_outs as
            with latest as (
                select delivery_id from wh.ops.deliveries
                where contract_id = '{OPT_OUT_CONTRACT}' and status = 'accepted'
                order by arrived_at desc, delivery_id desc limit 1)
            select distinct {nhs_sql('i.nhs_number')} as nhs_number
            from wh.identity.{OPT_OUT_CONTRACT} i join latest l on i._delivery_id = l.delivery_id
            where {nhs_sql('i.nhs_number')} is not null""")
    else:
        mem.execute("create table opt_outs (nhs_number varchar)")
    return digest, cached


def state_usable(mem: duckdb.DuckDBPyConnection, path: Path, gazetteer: str) -> bool:
    """Whether last night's stored state can be carried forward: it exists, was made by this
    code with this model, scoring inputs and gazetteer, and holds every record it recorded
    (retention purges linkage rows with their delivery: the next night then links everything)."""
    identity, linkage = tables(mem, "wh", "identity"), tables(mem, "wh", "linkage")
    if not ({*STATE_TABLES, *DELTA_TABLES, RECORD_KEYS} <= identity
            and {"person_records", "persons", "id_sequence"} <= linkage):
        return False
    if mem.execute("select state_version, gazetteer_sha256 from wh.identity.linkage_state").fetchall() != [
            (STATE_VERSION, gazetteer)]:
        return False
    if mem.execute("select model_sha256, scoring_version from wh.identity.linkage_scoring_state").fetchall() != [
            (splink_model.model_hash(path), SCORING_VERSION)]:
        return False
    return mem.execute(f"""
        with r as (select contract_id, delivery_id, count(*) as n from wh.identity.{RECORD_KEYS} group by all),
             p as (select contract_id, delivery_id, count(*) as n from wh.linkage.person_records group by all)
        select count(*) from wh.identity.linkage_deliveries d
        full join r using (contract_id, delivery_id) full join p using (contract_id, delivery_id)
        where d.records is distinct from r.n or d.records is distinct from p.n""").fetchall()[0][0] == 0


def _keyed(sql: str, per_record: bool = True) -> str:
    """Records with their profile key, the postcode compared and their date (`day`).

    A profile's `pkey` (`state.PKEY`) is a hash of what is compared about it (its identifiers
    and the postcode compared, which for a record with a UPRN and no postcode is its address's
    postcode): the same profile has the same key every night, which is how a night knows what it
    has seen. Not `per_record`: no `pkey` (`build_profiles` makes it once per profile)."""
    return f"""select {", ".join(f"r.{c}" for c in (*KEY, *IDENT))},
               {PKEY.format(p="r.", postcode="coalesce(r.postcode, a.postcode)") + " as pkey," if per_record else ""}
               coalesce(r.postcode, a.postcode) as compared_postcode, r.day
        from ({sql}) r left join address_postcodes a on a.uprn = r.uprn and r.postcode is null"""


def _current_deliveries(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource]) -> None:
    valid = tables(mem, "wh", "valid")
    parts = [f"""select '{s.id}' as contract_id, _delivery_id as delivery_id, count(*) as records
                 from wh.valid."{s.contract.table}" group by all""" for s in sources if s.contract.table in valid]
    mem.execute("create table cur_deliveries as " + (" union all ".join(parts) if parts else
                "select cast(null as varchar) as contract_id, cast(null as bigint) as delivery_id, "
                "cast(null as bigint) as records where false"))


def read_all(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource]) -> None:
    """Every valid person record (`unnumbered`, made into profiles and `records` by `build_profiles`),
    and last night's ids so that people keep theirs."""
    valid = tables(mem, "wh", "valid")
    mem.execute(f"create table unnumbered as {_keyed(records_sql(sources, valid, 'wh.'), per_record=False)}")
    mem.execute("create table cur_deliveries as select contract_id, delivery_id, count(*) as records from unnumbered group by all")
    # Read where it is used (once, by `assign_person_ids`), not copied: at 25 million rows a copy
    # is gigabytes of the working database's memory.
    if "person_records" in tables(mem, "wh", "linkage"):
        mem.execute("""create view previous as select contract_id, delivery_id, row_number, person_id, household_id
                       from wh.linkage.person_records""")
    else:
        mem.execute("""create table previous (contract_id varchar, delivery_id bigint, row_number bigint,
                       person_id varchar, household_id varchar)""")
    _id_sequence(mem)


def _id_sequence(mem: duckdb.DuckDBPyConnection) -> None:
    if "id_sequence" in tables(mem, "wh", "linkage"):
        mem.execute("create table id_sequence as select * from wh.linkage.id_sequence")
    else:
        mem.execute("create table id_sequence (kind varchar, next_number bigint)")


def read_new(mem: duckdb.DuckDBPyConnection, sources: list[PersonSource]) -> None:
    """Only the valid rows of deliveries linkage has not seen, and which deliveries it saw have gone.

    A delivery is known by its contract, id and number of valid rows: one that changed counts as
    withdrawn and delivered again."""
    _current_deliveries(mem, sources)
    mem.execute("""create table new_deliveries as select contract_id, delivery_id, records from cur_deliveries
                   except select contract_id, delivery_id, records from wh.identity.linkage_deliveries""")
    mem.execute("""create table removed_deliveries as
                   select contract_id, delivery_id, records from wh.identity.linkage_deliveries
                   except select contract_id, delivery_id, records from cur_deliveries""")
    wanted: dict[str, list[int]] = {}
    for c, d in mem.execute("select contract_id, delivery_id from new_deliveries order by all").fetchall():
        wanted.setdefault(c, []).append(d)
    mem.execute(f"create table new_records as {_keyed(records_sql(sources, tables(mem, 'wh', 'valid'), 'wh.', wanted))}")
    _id_sequence(mem)
