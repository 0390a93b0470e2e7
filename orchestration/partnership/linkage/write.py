"""Writing the night's result to the warehouse in one transaction (every table replaced, or
only what changed), the clerical review list, the night's counts and its aggregate report."""

from __future__ import annotations

import json
from dataclasses import asdict

import duckdb

import orchestration.partnership.linkage.model as splink_model
from orchestration.partnership.linkage.households import write_household_members
from orchestration.partnership.linkage.inputs import PersonSource
from orchestration.partnership.linkage.state import (
    ADDRESS_TABLE,
    CHANGE_LOG,
    FIRST,
    HOUSEHOLD_CHANGE_LOG,
    IDENT,
    RECORD_KEYS,
    RECORDS_VIEW,
    STATE_VERSION,
    LinkageSummary,
    report_dir,
    tables,
)
from orchestration.partnership.settings import Settings


def write_results(mem: duckdb.DuckDBPyConnection, settings: Settings, summary: LinkageSummary, delta: bool,
           gazetteer: str, address_cached: bool = False, sources: list[PersonSource] | None = None) -> None:
    ident = ", ".join(f"p.{c}" for c in IDENT)
    # What a record's rows say, per profile; the rows themselves are joined as they are written.
    mem.execute(f"""create table profile_out as
        select p.pid, m.person_id, a.household_id, m.match_method, m.match_probability, a.opted_out, {ident}, p.pkey
        from profiles p join profile_method m using (pid) join persons_all a using (person_id)""")
    mem.execute(f"""create view out_records as
        select d.contract_id, d.delivery_id, r.row_number, o.person_id, o.household_id, o.match_method,
               o.match_probability, o.opted_out, {", ".join(f"o.{c}" for c in IDENT)}, o.pkey
        from records r join deliveries d using (d) join profile_out o using (pid)""")
    # A night linking everything read each record's date with it (`records.day`): the households
    # take it from here, not from the table just written and the valid tables again.
    if not delta:
        mem.execute("""create view out_dated as
            select d.contract_id, d.delivery_id, r.row_number, o.person_id, o.uprn, o.postcode, o.surname, o.date_of_birth, r.day
            from records r join deliveries d using (d) join profile_out o using (pid)""")
    mem.execute(f"""create table out_profiles as
        select p.pkey, {", ".join(f"p.{c}" for c in IDENT)}, p.compared_postcode, {", ".join(f"p.{c}" for c in FIRST.split(", "))},
               p.n_records, c.component, pp.person_id, c.refused
        from profiles p join profile_cluster c using (pid) join profile_person pp using (pid)""")
    if delta:
        mem.execute("""create table changed as select person_id, household_id, opted_out from persons_all
                       where not relinked and (household_id is distinct from previous_household
                                               or opted_out is distinct from previous_opted_out)""")
        mem.execute("create table vanished as select pkey from touched where pkey not in (select pkey from all_profiles)")
        mem.execute("create table new_profile_keys as select pkey from new_keys")
    mem.execute(f"attach '{settings.warehouse_path}' as wh")
    try:
        mem.execute("begin transaction")
        for schema in ("linkage", "identity"):
            mem.execute(f"create schema if not exists wh.{schema}")
        if delta:
            _write_changes(mem)
        else:
            _write_all(mem, gazetteer)
        run = _log_changed_people(mem, delta)
        if not (delta and address_cached):
            mem.execute(f"create or replace table wh.identity.{ADDRESS_TABLE} as select * from address_postcodes order by uprn")
        mem.execute("create or replace table wh.linkage.id_sequence as select * from id_sequence order by kind")
        _clerical_review(mem, delta)
        # A person's spells change only with their records: those of the groups linked again.
        # Their records are tonight's rows (`out_records`, in memory): no scan of the stored table.
        relinked = "select person_id from prev_ids union all select person_id from persons_all where relinked"
        summary.address_lines_matched, summary.spells_worked_out = write_household_members(mem, sources or [], tables(mem, "wh", "valid"),
                                                                reuse_lines=delta and address_cached,
                                                                people=relinked if delta else None,
                                                                people_records="select * from out_records" if delta else None,
                                                                dated_records=None if delta else "select * from out_dated",
                                                                postcode_days=None if delta else _POSTCODE_DAYS)
        _log_changed_households(mem, run)
        _count(mem, summary)
        mem.execute("commit")
    except BaseException:
        mem.execute("rollback")
        raise
    finally:
        mem.execute("detach wh")


# A night linking everything: each person's first and last record day per postcode and surname
# from their profiles' (a profile's records share its postcode and surname), not from every record.
_POSTCODE_DAYS = """select pp.person_id, p.postcode, p.surname, min(p.first_day) as first_day, max(p.last_day) as last_day
                    from profiles p join profile_person pp using (pid)
                    where p.postcode is not null and p.surname is not null and p.first_day is not null group by all"""
_RECORD_COLS = "contract_id, delivery_id, row_number, person_id, household_id, match_method, match_probability, opted_out"
_PERSON_COLS = "person_id, household_id, opted_out, records"
_ADDRESS_COLS = f"person_id, records, {FIRST}, last_uprn, last_postcode, last_surname, household_id, opted_out"


def _write_all(mem: duckdb.DuckDBPyConnection, gazetteer: str) -> None:
    """Everything linked tonight: replace every table.

    The per-record tables are written in `records`' order, which is (contract, delivery, row):
    the joins that add each profile's values keep it (insertion order preserved), so the
    tables are stored in that order, nearly, without sorting 25 million wide rows again."""
    mem.execute("set preserve_insertion_order = true")
    mem.execute(f"create or replace table wh.linkage.person_records as select {_RECORD_COLS} from out_records")
    mem.execute(f"create or replace table wh.linkage.persons as select {_PERSON_COLS} from persons_all order by person_id")
    # Each record's key and profile, nothing else (its identifiers and person are its profile's).
    mem.execute(f"""create or replace table wh.identity.{RECORD_KEYS} as
                    select d.contract_id, d.delivery_id, r.row_number, p.pkey
                    from records r join deliveries d using (d) join profiles p using (pid)""")
    # What tonight scored: every current profile, the pairs found among them, and the
    # model and surname frequencies they were scored with.
    mem.execute("create or replace table wh.identity.linkage_scoring_state as select * from scoring_state")
    mem.execute("create or replace table wh.identity.linkage_scored_profiles as select pkey from profiles order by pkey")
    mem.execute("""create or replace table wh.identity.linkage_scored_pairs as
                   select least(pa.pkey, pb.pkey) as pkey_a, greatest(pa.pkey, pb.pkey) as pkey_b,
                          s.match_weight, s.match_probability
                   from scored_pairs s join profiles pa on pa.pid = s.a join profiles pb on pb.pid = s.b
                   order by pkey_a, pkey_b""")
    mem.execute("create or replace table wh.identity.linkage_term_frequencies as select * from term_frequencies")
    # What the next night needs to link only what changes.
    mem.execute(f"""create or replace table wh.identity.linkage_state as
                    select {STATE_VERSION} as state_version, '{gazetteer}' as gazetteer_sha256""")
    mem.execute("create or replace table wh.identity.linkage_profiles as select * from out_profiles order by pkey")
    mem.execute(f"""create or replace table wh.identity.linkage_person_addresses as
                    select {_ADDRESS_COLS} from persons_all order by person_id""")
    mem.execute("""create or replace table wh.identity.linkage_deliveries as
                   select contract_id, delivery_id, records from cur_deliveries order by contract_id, delivery_id""")
    if "linkage_records" in tables(mem, "wh", "identity"):
        mem.execute("drop table wh.identity.linkage_records")  # a warehouse linked before the view
    mem.execute(f"create or replace view wh.identity.linkage_records as {RECORDS_VIEW}")


def _write_changes(mem: duckdb.DuckDBPyConnection) -> None:
    """Only what changed: the records and profiles linked again replace last night's rows of
    the people they held; the rows of people whose household or opt-out changed are replaced by
    the same rows with the new values. (Not updated in place: DuckDB's checkpoint then rewrites
    the updated column of every row group holding such a row, while rows deleted and appended
    cost it almost nothing. Row order means nothing in these tables.)"""
    # A record's key and profile never change: the stored ones of withdrawn deliveries go,
    # tonight's new ones come (its person, identifiers and household are its profile's and
    # person's, replaced below).
    mem.execute(f"""delete from wh.identity.{RECORD_KEYS} k using removed_deliveries r
                    where k.contract_id = r.contract_id and k.delivery_id = r.delivery_id""")
    mem.execute(f"insert into wh.identity.{RECORD_KEYS} select contract_id, delivery_id, row_number, pkey from new_records")
    # One scan of `linkage.person_records` for the rows of both kinds of people (by row id, the
    # delete then reads no column of the table's 25 million rows again). Its household and
    # opt-out flag are not read: the rows kept take the new ones.
    read = "contract_id, delivery_id, row_number, person_id, match_method, match_probability"
    mem.execute(f"""create or replace temp table _hit_rows as select rowid as _rid, {read} from wh.linkage.person_records
                    where person_id in (select person_id from prev_ids union all select person_id from changed)""")
    mem.execute(f"""create or replace temp table _changed_rows as
                    select {", ".join(f"c.{c}" if c in ("household_id", "opted_out") else f"t.{c}" for c in _RECORD_COLS.split(", "))}
                    from _hit_rows t join changed c on t.person_id = c.person_id
                    where t.person_id not in (select person_id from prev_ids)""")
    mem.execute("delete from wh.linkage.person_records where rowid in (select _rid from _hit_rows)")
    mem.execute(f"insert into wh.linkage.person_records select {_RECORD_COLS} from out_records")
    mem.execute(f"insert into wh.linkage.person_records select {_RECORD_COLS} from _changed_rows")
    for table, cols in (("linkage.persons", _PERSON_COLS), ("identity.linkage_person_addresses", _ADDRESS_COLS)):
        mem.execute(f"""delete from wh.{table} where person_id in (select person_id from prev_ids)
                        or person_id in (select person_id from changed)""")
        mem.execute(f"""insert into wh.{table} select {cols} from persons_all
                        where relinked or person_id in (select person_id from changed)""")
    mem.execute("delete from wh.identity.linkage_profiles where component in (select component from region_components)")
    mem.execute("insert into wh.identity.linkage_profiles select * from out_profiles")
    mem.execute("delete from wh.identity.linkage_scored_profiles where pkey in (select pkey from vanished)")
    mem.execute("insert into wh.identity.linkage_scored_profiles select pkey from new_profile_keys")
    mem.execute("""delete from wh.identity.linkage_scored_pairs
                   where pkey_a in (select pkey from vanished) or pkey_b in (select pkey from vanished)""")
    mem.execute("insert into wh.identity.linkage_scored_pairs select * from new_pairs_pk")
    mem.execute("""delete from wh.identity.linkage_deliveries d using removed_deliveries r
                   where d.contract_id = r.contract_id and d.delivery_id = r.delivery_id""")
    mem.execute("insert into wh.identity.linkage_deliveries select contract_id, delivery_id, records from new_deliveries")


def _log_changed_people(mem: duckdb.DuckDBPyConnection, delta: bool) -> int:
    """Append to `linkage.person_changes` the people whose rows of `linkage.person_records` this
    run replaced (last night's people in the groups linked again, tonight's people of those
    groups, people whose household or opt-out changed), under this run's number; a run that
    linked everything logs one row with no person: everyone. dbt rebuilds their records from
    it, and the rows are removed only after a dbt build that consumed them succeeded
    (`dbt.runner.record_build`), so a failed build leaves them for the next night."""
    log = f"wh.{CHANGE_LOG}"
    mem.execute(f"create table if not exists {log} as select 0::bigint as link_run, person_id from persons_all limit 0")
    run = mem.execute(f"select coalesce(max(link_run), 0) + 1 from {log}").fetchall()[0][0]
    people = ("""select person_id from prev_ids union select person_id from persons_all where relinked
                 union select person_id from changed""" if delta else "select null as person_id")
    mem.execute(f"insert into {log} select {run}, person_id from ({people}) order by all")
    return run


def _log_changed_households(mem: duckdb.DuckDBPyConnection, run: int) -> None:
    """Append to `linkage.household_changes`, under the run's number of the people's log, the
    households whose members (a person's spell, added, removed or changed) this run changed
    (`_membership_changed`, left by `households.write_household_members`); with no earlier
    table, one row with no household: every household. dbt's family quarters rebuild them, and
    the runner removes the rows with the people's log, after a build that succeeded."""
    log = f"wh.{HOUSEHOLD_CHANGE_LOG}"
    mem.execute(f"create table if not exists {log} (link_run bigint, household_id varchar)")
    if not mem.execute("""select count(*) from duckdb_tables() where database_name = 'temp'
                          and table_name = '_membership_changed'""").fetchall()[0][0]:
        mem.execute(f"insert into {log} values ({run}, null)")
        return
    mem.execute(f"insert into {log} select {run}, household_id from _membership_changed order by all")


def _clerical_review(mem: duckdb.DuckDBPyConnection, delta: bool) -> None:
    """Borderline pairs (review threshold <= p < match threshold) left in two different people,
    the profile delivered first on the left.

    A row depends on its pair and its two profiles (identifiers, first record, records,
    person). An incremental night changes those only for the profiles of the groups it links
    again: it replaces the rows of last night's people in those groups (`prev_ids`: a person
    never spans two groups) with the rows of pairs that have a profile linked tonight."""
    sides = ("forename", "surname", "date_of_birth", "sex", "postcode", "nhs_number", "uprn")
    first = "(x.first_contract_id, x.first_delivery_id, x.first_row_number) < (y.first_contract_id, y.first_delivery_id, y.first_row_number)"
    delta = delta and "linkage_clerical_review" in tables(mem, "wh", "identity")
    pairs, profiles = "wh.identity.linkage_scored_pairs", "wh.identity.linkage_profiles"
    if delta:
        # The pairs with a profile linked tonight, and only their profiles (not a join of every
        # stored pair with every stored profile, twice).
        mem.execute(f"""create or replace temp table _review_pairs as select * from {pairs} s
                        where s.match_probability < {splink_model.MATCH_THRESHOLD}
                          and (s.pkey_a in (select pkey from out_profiles) or s.pkey_b in (select pkey from out_profiles))""")
        mem.execute(f"""create or replace temp table _review_profiles as select * from {profiles}
                        where pkey in (select pkey_a from _review_pairs union select pkey_b from _review_pairs)""")
        pairs, profiles = "_review_pairs", "_review_profiles"
    rows = f"""
        with s as (
            select s.match_probability, s.match_weight,
                   case when {first} then x.pkey else y.pkey end as pkey_l,
                   case when {first} then y.pkey else x.pkey end as pkey_r
            from {pairs} s
            join {profiles} x on x.pkey = s.pkey_a join {profiles} y on y.pkey = s.pkey_b
            where s.match_probability < {splink_model.MATCH_THRESHOLD})
        select s.match_probability, s.match_weight, a.person_id as person_id_l, b.person_id as person_id_r,
               {", ".join(f"a.{c} as {c}_l, b.{c} as {c}_r" for c in sides)},
               a.n_records as records_l, b.n_records as records_r
        from s join {profiles} a on a.pkey = s.pkey_l join {profiles} b on b.pkey = s.pkey_r
        where a.person_id <> b.person_id"""
    if delta:
        mem.execute("""delete from wh.identity.linkage_clerical_review
                       where person_id_l in (select person_id from prev_ids) or person_id_r in (select person_id from prev_ids)""")
        mem.execute(f"insert into wh.identity.linkage_clerical_review {rows}")
    else:
        mem.execute(f"""create or replace table wh.identity.linkage_clerical_review as {rows}
                        order by s.match_probability desc, person_id_l, person_id_r""")


def _count(mem: duckdb.DuckDBPyConnection, summary: LinkageSummary) -> None:
    """The night's figures, from the tables as written (the same whether all or part was linked)."""
    q = lambda sql: mem.execute(sql).fetchall()[0][0]  # noqa: E731
    summary.records = q("select count(*) from wh.linkage.person_records")
    # A person's records are all flagged or none: counted per person, not per record held.
    summary.opted_out_records = q("select coalesce(sum(records), 0) from wh.linkage.persons where opted_out")
    summary.records_by_method = dict(mem.execute(
        "select match_method, count(*) from wh.linkage.person_records group by 1 order by 1").fetchall())
    summary.persons = q("select count(*) from wh.linkage.persons")
    summary.households = q("select count(distinct household_id) from wh.linkage.persons")
    summary.opted_out_persons = q("select count(*) from wh.linkage.persons where opted_out")
    summary.persons_kept_from_last_night = summary.persons - summary.new_persons
    summary.profiles = q("select count(*) from wh.identity.linkage_profiles")
    summary.links_refused = q("select coalesce(sum(refused), 0) from wh.identity.linkage_profiles")
    summary.probabilistic_pairs_scored = q("select count(*) from wh.identity.linkage_scored_pairs")
    summary.clerical_review_pairs = q("select count(*) from wh.identity.linkage_clerical_review")


def write_report(settings: Settings, summary: LinkageSummary) -> None:
    """The night's linkage report: counts only, no identifying values."""
    out = report_dir(settings)
    out.mkdir(parents=True, exist_ok=True)
    data = asdict(summary)
    (out / "linkage_summary.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
