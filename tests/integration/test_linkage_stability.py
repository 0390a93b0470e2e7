"""Person ids survive a rerun with one more day of deliveries, and that night scores only
the profiles it has not seen and links only the records it touches, ending exactly where
scoring and linking everything again ends, table by table."""

import shutil

import duckdb
import pytest

from orchestration.defs.catalogue import contracts
from orchestration.partnership.linkage import run_linkage
from orchestration.partnership.linkage.inputs import OPT_OUT_CONTRACT, nhs_sql
from orchestration.partnership.linkage.pipeline import DELTA_TABLES, STATE_TABLES, coverage_gaps
from orchestration.partnership.settings import Settings

LINKAGE_TABLES = ("person_records", "persons", "id_sequence")
IDENTITY_TABLES = (*STATE_TABLES, *DELTA_TABLES, "linkage_records", "linkage_clerical_review")


def _ids(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {(c, d, r): (p, h) for c, d, r, p, h in con.execute(
            "select contract_id, delivery_id, row_number, person_id, household_id from linkage.person_records").fetchall()}
    finally:
        con.close()


def _copy(settings: Settings, target: Settings) -> None:
    (target.data_dir / "linkage").mkdir(parents=True)
    shutil.copy(settings.warehouse_path, target.warehouse_path)
    shutil.copy(settings.data_dir / "linkage" / "model.json", target.data_dir / "linkage" / "model.json")
    if settings.reference_dir.exists():
        shutil.copytree(settings.reference_dir, target.reference_dir)


def _yesterday(settings: Settings, tmp_path) -> Settings:
    """The demo night's warehouse without the deliveries that arrived on the last day, linked."""
    yesterday = Settings(tmp_path / "yesterday")
    _copy(settings, yesterday)
    con = duckdb.connect(str(yesterday.warehouse_path))
    try:
        last = con.execute("""select list(delivery_id) from ops.deliveries
                              where status = 'accepted' and cast(arrived_at as date) =
                                    (select max(cast(arrived_at as date)) from ops.deliveries where status = 'accepted')""").fetchall()[0][0]
        assert last
        for schema in ("valid", "identity"):
            for (t,) in con.execute(f"select table_name from duckdb_tables() where schema_name = '{schema}' "
                                    "and table_name not like 'linkage_%'").fetchall():
                con.execute(f'delete from {schema}."{t}" where _delivery_id in (select unnest(?))', [last])
        for t in LINKAGE_TABLES:
            con.execute(f"drop table if exists linkage.{t}")
        for t in IDENTITY_TABLES:
            con.execute(f"drop table if exists identity.{t}")
    finally:
        con.close()
    summary = run_linkage(yesterday, contracts())
    assert not summary.incremental
    return yesterday


def _today(settings: Settings, tmp_path, name: str, yesterday: Settings, scoring_state: bool,
           changes: bool = False) -> Settings:
    """The full warehouse, with yesterday's linkage tables (and, if asked, what it scored and
    linked) as last night's. With `changes`, also: one delivery yesterday had is withdrawn,
    and the opt-out list names one more person and one fewer."""
    today = Settings(tmp_path / name)
    _copy(settings, today)
    con = duckdb.connect(str(today.warehouse_path))
    try:
        con.execute(f"attach '{yesterday.warehouse_path}' as y (read_only)")
        for t in LINKAGE_TABLES:
            con.execute(f"create or replace table linkage.{t} as select * from y.linkage.{t}")
        for t in IDENTITY_TABLES:
            if scoring_state:
                con.execute(f"create or replace table identity.{t} as select * from y.identity.{t}")
            else:
                con.execute(f"drop table if exists identity.{t}")
        if changes:
            _withdraw_and_opt_out(con)
    finally:
        con.close()
    return today


def _withdraw_and_opt_out(con) -> None:
    # The smallest delivery of a person extract yesterday had.
    contract, delivery = con.execute("""
        select contract_id, delivery_id from linkage.person_records where contract_id not like 'nhs%'
        group by all order by count(*), contract_id, delivery_id limit 1""").fetchall()[0]
    for schema in ("valid", "identity"):
        con.execute(f'delete from {schema}."{contract}" where _delivery_id = ?', [delivery])
    latest = con.execute(f"""select delivery_id from ops.deliveries where contract_id = '{OPT_OUT_CONTRACT}'
                             and status = 'accepted' order by arrived_at desc, delivery_id desc limit 1""").fetchall()[0][0]
    # One person on the list leaves it; one person with an NHS number, not on it, joins it.
    con.execute(f"""delete from identity.{OPT_OUT_CONTRACT} where _delivery_id = ? and _row_number =
                    (select min(_row_number) from identity.{OPT_OUT_CONTRACT} where _delivery_id = ?)""", [latest, latest])
    joiner = con.execute(f"""select min(nhs_number) from identity.linkage_records where nhs_number not in
                             (select {nhs_sql('nhs_number')} from identity.{OPT_OUT_CONTRACT} where nhs_number is not null)""").fetchall()[0][0]
    con.execute(f"""insert into identity.{OPT_OUT_CONTRACT} by name
                    select ? as _delivery_id, max(_row_number) + 1 as _row_number, ? as nhs_number
                    from identity.{OPT_OUT_CONTRACT}""", [latest, joiner])


def _tables_differ(a: Settings, b: Settings) -> dict[str, int]:
    """Rows in one warehouse's linkage tables and not in the other's (as multisets), per table."""
    con = duckdb.connect(str(a.warehouse_path), read_only=True)
    try:
        con.execute(f"attach '{b.warehouse_path}' as b (read_only)")
        out = {}
        for schema, names in (("linkage", LINKAGE_TABLES), ("identity", IDENTITY_TABLES)):
            for t in names:
                n = con.execute(f"""select (select count(*) from (select * from {schema}.{t} except all select * from b.{schema}.{t}))
                                         + (select count(*) from (select * from b.{schema}.{t} except all select * from {schema}.{t}))
                                 """).fetchall()[0][0]
                out[f"{schema}.{t}"] = n
        return {t: n for t, n in out.items() if n}
    finally:
        con.close()


def test_a_rerun_with_one_more_day_of_deliveries_keeps_person_ids(nights):
    settings, tmp, yesterday, (incremental, summary), _ = nights
    before = _ids(yesterday.warehouse_path)
    after = _ids(incremental.warehouse_path)

    new_rows = set(after) - set(before)
    assert new_rows, "the last day brought new rows"
    withdrawn = set(before) - set(after)
    assert len({(c, d) for c, d, _ in withdrawn}) == 1  # only the withdrawn delivery's rows left
    stayed = [k for k in before if k in after]
    changed = [k for k in stayed if before[k][0] != after[k][0]]
    kept = 1 - len(changed) / len(stayed)
    persons_before = {before[k][0] for k in stayed}
    persons_after = {p for p, _ in after.values()}
    print(f"\nstability: {len(before)} rows of yesterday, {len(withdrawn)} withdrawn, {len(new_rows)} new; "
          f"{kept:.3%} keep their person id; {len(persons_before - persons_after)} person ids retired, "
          f"{summary.new_persons} new persons")
    assert kept >= 0.999
    assert len(persons_before & persons_after) >= 0.999 * len(persons_before)
    # new people get new numbers, never a retired one
    assert not (persons_after - persons_before) & {p for p, _ in before.values()}
    hh_kept = sum(before[k][1] == after[k][1] for k in stayed) / len(stayed)
    assert hh_kept >= 0.99


def _identities(path) -> set[tuple]:
    """Distinct identifying values of the linked records (what a profile is), read back."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return set(con.execute("""select distinct nhs_number, upn, uprn, local_id, forename, surname, date_of_birth,
                                         sex, postcode from identity.linkage_records""").fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def nights(demo_night, tmp_path_factory):
    """Yesterday linked from scratch; today (one more day, a withdrawn delivery, a changed
    opt-out list) linked on top of it incrementally, and from scratch with everything re-scored."""
    settings, _ = demo_night
    tmp = tmp_path_factory.mktemp("linkage_nights")
    yesterday = _yesterday(settings, tmp)
    incremental = _today(settings, tmp, "incremental", yesterday, scoring_state=True, changes=True)
    inc = run_linkage(incremental, contracts())
    full = _today(settings, tmp, "full", yesterday, scoring_state=True, changes=True)
    rescored = run_linkage(full, contracts(), rescore=True)
    return settings, tmp, yesterday, (incremental, inc), (full, rescored)


def test_a_night_scores_only_new_profiles_and_links_as_a_full_rescore_would(nights):
    settings, tmp, yesterday, (incremental, inc), (full, rescored) = nights

    # Only profiles yesterday had not seen were scored (counted here from the records themselves).
    unseen = _identities(incremental.warehouse_path) - _identities(yesterday.warehouse_path)
    print(f"\nincremental night: {inc.profiles_scored} of {inc.profiles} profiles scored "
          f"({inc.records_scored} records), {inc.pairs_found_tonight} pairs found tonight, "
          f"{inc.records_linked} of {inc.records} records linked again; "
          f"full re-score: {rescored.profiles_scored} profiles, {rescored.pairs_found_tonight} pairs; "
          f"seconds {inc.seconds} vs {rescored.seconds}")
    assert not inc.full_rescore and rescored.full_rescore
    assert inc.incremental and not rescored.incremental
    assert inc.profiles_scored == len(unseen) > 0
    assert inc.profiles_scored < 0.2 * inc.profiles
    assert rescored.profiles_scored == rescored.profiles == inc.profiles
    assert inc.pairs_found_tonight < rescored.pairs_found_tonight
    # Only the records of new and withdrawn deliveries and the people they touch were linked again ...
    assert 0 < inc.records_linked < 0.2 * inc.records and rescored.records_linked == rescored.records
    # ... and every table ends as scoring and linking everything again leaves it: the same
    # pairs, people, ids, households, opt-out flags, review list and stored state.
    assert _tables_differ(incremental, full) == {}
    assert inc.clerical_review_pairs == rescored.clerical_review_pairs > 0
    assert (inc.persons, inc.households, inc.opted_out_persons, inc.links_refused, inc.records_by_method) == (
        rescored.persons, rescored.households, rescored.opted_out_persons, rescored.links_refused,
        rescored.records_by_method)
    assert inc.new_persons == rescored.new_persons


def test_an_opt_out_and_a_withdrawn_delivery_take_effect_on_an_incremental_night(nights):
    settings, tmp, yesterday, (incremental, inc), _ = nights
    con = duckdb.connect(str(incremental.warehouse_path), read_only=True)
    try:
        con.execute(f"attach '{yesterday.warehouse_path}' as y (read_only)")
        # Every record of a person whose NHS number is on tonight's list is flagged, and no other.
        wrong = con.execute(f"""
            with listed as (
                select distinct {nhs_sql('nhs_number')} as nhs_number from identity.{OPT_OUT_CONTRACT}
                where _delivery_id = (select delivery_id from ops.deliveries where contract_id = '{OPT_OUT_CONTRACT}'
                                      and status = 'accepted' order by arrived_at desc, delivery_id desc limit 1)),
            flagged as (select distinct l.person_id from identity.linkage_records l join listed using (nhs_number))
            select count(*) filter (where r.opted_out <> (f.person_id is not null)),
                   count(*) filter (where f.person_id is not null)
            from linkage.person_records r left join flagged f using (person_id)""").fetchall()[0]
        assert wrong[0] == 0 and wrong[1] > 0
        changed = con.execute("""select count(*) from linkage.persons p join y.linkage.persons q using (person_id)
                                 where p.opted_out <> q.opted_out""").fetchall()[0][0]
        assert changed >= 2  # one person left the list, one joined it
        # The withdrawn delivery's records are gone from every linkage table.
        gone = con.execute("""select count(*) from y.linkage.person_records q anti join linkage.person_records p
                              using (contract_id, delivery_id, row_number)""").fetchall()[0][0]
        assert gone > 0
    finally:
        con.close()


def test_the_first_night_after_the_upgrade_links_everything_and_the_next_only_what_changed(nights, tmp_path):
    """A warehouse made by the code before incremental linkage (no stored state, no profile key
    on `identity.linkage_records`): its first night links everything, as a from-scratch night
    would; the next night with nothing new changes nothing."""
    settings, tmp, yesterday, _, (full, rescored) = nights
    upgraded = _today(settings, tmp_path, "upgraded", yesterday, scoring_state=True, changes=True)
    con = duckdb.connect(str(upgraded.warehouse_path))
    try:
        for t in DELTA_TABLES:
            con.execute(f"drop table identity.{t}")
        con.execute("alter table identity.linkage_records drop column pkey")
    finally:
        con.close()
    first = run_linkage(upgraded, contracts())
    assert not first.incremental and not first.full_rescore
    assert _tables_differ(upgraded, full) == {}
    again = Settings(tmp_path / "again")
    _copy(upgraded, again)
    second = run_linkage(again, contracts())
    assert second.incremental and second.records_linked == 0 and second.profiles_scored == 0
    assert _tables_differ(again, upgraded) == {}
    # Retention purges a delivery's linkage rows with it, behind linkage's back: the next night
    # cannot carry the state forward, and links everything again.
    con = duckdb.connect(str(again.warehouse_path))
    try:
        contract, delivery = con.execute("""select contract_id, max(delivery_id) from linkage.person_records
                                            group by 1 order by 1 limit 1""").fetchall()[0]
        for table in (f'valid."{contract}"', f'identity."{contract}"'):
            con.execute(f"delete from {table} where _delivery_id = ?", [delivery])
        for table in ("linkage.person_records", "identity.linkage_records"):
            con.execute(f"delete from {table} where contract_id = ? and delivery_id = ?", [contract, delivery])
    finally:
        con.close()
    third = run_linkage(again, contracts())
    assert not third.incremental and not coverage_gaps(again, contracts())
