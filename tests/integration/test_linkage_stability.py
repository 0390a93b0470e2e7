"""Person ids survive a rerun with one more day of deliveries, and that night scores only
the profiles it has not seen and links only the records it touches, ending exactly where
scoring and linking everything again ends, table by table."""

import os
import shutil

import duckdb
import pytest

from orchestration.partnership.catalogue import contracts
from orchestration.partnership.linkage import coverage_gaps, run_linkage
from orchestration.partnership.linkage.inputs import OPT_OUT_CONTRACT, nhs_sql
from orchestration.partnership.linkage.state import ADDRESS_TABLE, DELTA_TABLES, RECORD_KEYS, STATE_TABLES
from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import LINKAGE_MEMORY_LIMIT_ENV, memory_limit
from tests.integration.test_memory_limit import duckdb_says

pytestmark = pytest.mark.dbt_free

LINKAGE_TABLES = ("person_records", "persons", "id_sequence", "household_members")
IDENTITY_TABLES = (*STATE_TABLES, *DELTA_TABLES, ADDRESS_TABLE, RECORD_KEYS, "linkage_clerical_review",
                   "linkage_household_addresses", "linkage_household_review", "linkage_line_matches",
                   "linkage_line_deliveries", "linkage_spells", "linkage_spell_state", "linkage_line_near",
                   "linkage_postcode_days")
# Views of those tables, compared as their readers see them (not copied: they read the copies).
IDENTITY_VIEWS = ("linkage_records",)


def _ids(path):
    with duckdb.connect(str(path), read_only=True) as con:
        return {(c, d, r): (p, h) for c, d, r, p, h in con.execute(
            "select contract_id, delivery_id, row_number, person_id, household_id from linkage.person_records").fetchall()}


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
            # each extract's table (the linkage's own tables and a release's review list are not)
            for (t,) in con.execute(f"select table_name from duckdb_columns() where schema_name = '{schema}' "
                                    "and column_name = '_delivery_id' and table_name not like 'linkage_%'").fetchall():
                con.execute(f'delete from {schema}."{t}" where _delivery_id in (select unnest(?))', [last])
        for t in LINKAGE_TABLES:
            con.execute(f"drop table if exists linkage.{t}")
        for t in IDENTITY_VIEWS:
            con.execute(f"drop view if exists identity.{t}")
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
        if not scoring_state:
            for t in IDENTITY_VIEWS:
                con.execute(f"drop view if exists identity.{t}")
        for t in IDENTITY_TABLES:
            if scoring_state:
                con.execute(f"create or replace table identity.{t} as select * from y.identity.{t}")
            else:
                con.execute(f"drop table if exists identity.{t}")
        if changes:
            _withdraw_and_opt_out(con)
            _move_house(con)
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


MOVER_CONTRACT = "county_council__children_social_care_referrals"  # carries UPRN, postcode and surname
FRESH_UPRNS = ("999999999991", "999999999992")  # on no record


def _move_house(con) -> None:
    """Tonight's children's social care delivery (UPRN, postcode and surname) moves people:
    1. its record, given the UPN of a pupil with no UPRN yet (a household alone), moves them
       to the UPRN of a person living alone: they join that household;
    2. a record added to it (someone new, no agency ids) brings a new UPRN to the postcode
       and surname of people none of whom has a UPRN;
    3. another brings another new UPRN to the postcode and surname of people who share one
       UPRN through one of them.
    The people of 2 and 3 have no record tonight: only their neighbours changed (a postcode
    and a surname decide no household, but the incremental scope still takes such cells in)."""
    delivery, row = con.execute(f"""select _delivery_id, min(_row_number) from valid."{MOVER_CONTRACT}"
                                    where _delivery_id not in (select delivery_id from y.identity.linkage_deliveries
                                                               where contract_id = '{MOVER_CONTRACT}')
                                    group by all order by all limit 1""").fetchall()[0]
    last = con.execute(f'select max(_row_number) from valid."{MOVER_CONTRACT}" where _delivery_id = ?', [delivery]).fetchall()[0][0]
    # Yesterday's people per cell (postcode and surname of their latest address).
    cells = """select last_postcode, last_surname from y.identity.linkage_person_addresses
               where last_postcode is not null and last_surname is not null
               group by all having {} order by count(*) desc, last_postcode, last_surname limit 1"""
    no_uprn = con.execute(cells.format("count(last_uprn) = 0")).fetchall()[0]
    one_uprn = con.execute(cells.format("count(distinct last_uprn) = 1 and count(*) > count(last_uprn)")).fetchall()[0]
    # A pupil (UPN) with no UPRN on any record (so a household alone yesterday).
    upn = con.execute("""
        with pa as (select * from y.identity.linkage_person_addresses),
        hh as (select household_id, count(*) as people, sum(records) as records from pa group by 1),
        pupils as (select person_id, min(upn) as upn from y.identity.linkage_records group by 1
                   having count(upn) > 0 and count(uprn) = 0)
        select k.upn from pupils k join pa p using (person_id) join hh using (household_id)
        order by p.records * 2 > hh.records desc, 1 limit 1""").fetchall()[0][0]
    target = con.execute("""select min(last_uprn) from y.identity.linkage_person_addresses where household_id in
                            (select household_id from y.identity.linkage_person_addresses group by 1 having count(*) = 1)""").fetchall()[0][0]
    con.execute(f"""update identity."{MOVER_CONTRACT}" set uprn = ?, upn = ?, child_id = null
                    where _delivery_id = ? and _row_number = ?""", [target, upn, delivery, row])
    for n, (uprn, (postcode, surname)) in enumerate(zip(FRESH_UPRNS, (no_uprn, one_uprn)), 1):
        con.execute(f"""insert into valid."{MOVER_CONTRACT}" select * replace (? as _row_number, ? as postcode)
                        from valid."{MOVER_CONTRACT}" where _delivery_id = ? and _row_number = ?""",
                    [last + n, postcode, delivery, row])
        con.execute(f"""insert into identity."{MOVER_CONTRACT}"
                        select * replace (? as _row_number, ? as uprn, ? as surname, ? as forename,
                                          null as child_id, null as upn)
                        from identity."{MOVER_CONTRACT}" where _delivery_id = ? and _row_number = ?""",
                    [last + n, uprn, surname, f"newcomer{'ab'[n - 1]}", delivery, row])
    # 4. A record with the UPN of someone in a pair for clerical review joins them: their group
    #    is linked again, and their review rows are replaced.
    reviewed = con.execute("""select min(l.upn) from y.identity.linkage_clerical_review r
                              join y.identity.linkage_records l on l.person_id in (r.person_id_l, r.person_id_r)
                              where l.upn is not null""").fetchall()[0][0]
    con.execute(f"""insert into valid."{MOVER_CONTRACT}" select * replace (? as _row_number)
                    from valid."{MOVER_CONTRACT}" where _delivery_id = ? and _row_number = ?""", [last + 3, delivery, row])
    con.execute(f"""insert into identity."{MOVER_CONTRACT}"
                    select * replace (? as _row_number, null as uprn, ? as upn, null as child_id)
                    from identity."{MOVER_CONTRACT}" where _delivery_id = ? and _row_number = ?""",
                [last + 3, reviewed, delivery, row])


def _tables_differ(a: Settings, b: Settings) -> dict[str, int]:
    """Rows in one warehouse's linkage tables and not in the other's (as multisets), per table."""
    con = duckdb.connect(str(a.warehouse_path), read_only=True)
    try:
        con.execute(f"attach '{b.warehouse_path}' as b (read_only)")
        out = {}
        for schema, names in (("linkage", LINKAGE_TABLES), ("identity", (*IDENTITY_TABLES, *IDENTITY_VIEWS))):
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
    before = os.environ.get(LINKAGE_MEMORY_LIMIT_ENV)
    os.environ[LINKAGE_MEMORY_LIMIT_ENV] = "1GB"  # linkage's own setting, for this run only
    try:
        inc = run_linkage(incremental, contracts())
    finally:
        if before is None:
            os.environ.pop(LINKAGE_MEMORY_LIMIT_ENV)
        else:
            os.environ[LINKAGE_MEMORY_LIMIT_ENV] = before
    full = _today(settings, tmp, "full", yesterday, scoring_state=True, changes=True)
    rescored = run_linkage(full, contracts(), rescore=True)
    return settings, tmp, yesterday, (incremental, inc), (full, rescored)


def test_a_night_scores_only_new_profiles_and_links_as_a_full_rescore_would(nights):
    settings, tmp, yesterday, (incremental, inc), (full, rescored) = nights

    # Only profiles yesterday had not seen were scored (counted here from the records themselves).
    unseen = _identities(incremental.warehouse_path) - _identities(yesterday.warehouse_path)
    print(f"\nincremental night: {inc.profiles_scored} of {inc.profiles} profiles scored "
          f"({inc.records_scored} records), {inc.pairs_found_tonight} pairs found tonight, "
          f"{inc.records_linked} of {inc.records} records linked again, {inc.address_lines_matched} address lines "
          f"matched (full: {rescored.address_lines_matched}); "
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
    # Linkage's working database holds to its own memory setting when given, else to the night's.
    assert inc.memory_limit == duckdb_says("1GB")
    assert rescored.memory_limit == duckdb_says(memory_limit())
    # Address lines: only the new deliveries' lines were matched; the others' matches were kept.
    assert 0 < inc.address_lines_matched < 0.2 * rescored.address_lines_matched
    # Address spells: only the people linked again had theirs worked out (and still every
    # table, the kept spells included, equals the full night's).
    assert 0 < inc.spells_worked_out < 0.2 * rescored.spells_worked_out


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


def test_households_follow_a_move_and_leave_its_postcode_neighbours_alone_on_an_incremental_night(nights):
    """A move takes effect and the people beside it keep their households (`_move_house`); the
    incremental night, which works households out only around what changed, ends as the full
    one (`_tables_differ` above)."""
    settings, tmp, yesterday, (incremental, inc), _ = nights
    con = duckdb.connect(str(incremental.warehouse_path), read_only=True)
    try:
        con.execute(f"attach '{yesterday.warehouse_path}' as y (read_only)")
        tonight = """select person_id from linkage.person_records
                     anti join y.identity.linkage_deliveries using (contract_id, delivery_id)"""

        def cell(uprn):
            """The household of the mover with this UPRN, and yesterday's people of its new cell
            (none of whom has a record tonight): their UPRN and household yesterday and tonight."""
            household, postcode, surname = con.execute(
                """select household_id, last_postcode, last_surname
                   from identity.linkage_person_addresses where last_uprn = ?""", [uprn]).fetchall()[0]
            rows = con.execute(f"""select q.last_uprn, q.household_id, p.household_id from y.identity.linkage_person_addresses q
                                   join identity.linkage_person_addresses p using (person_id)
                                   where q.last_postcode = ? and q.last_surname = ?
                                     and q.person_id not in ({tonight})""", [postcode, surname]).fetchall()
            return household, rows

        # 2, 3. A newcomer with a UPRN at the postcode and surname of people with no record tonight
        # changes nobody's household: a postcode and a surname are no evidence of living together.
        for uprn in FRESH_UPRNS:
            household, rows = cell(uprn)
            assert rows and all(before == after for _, before, after in rows)
            assert household not in {after for *_, after in rows}
        # 1. The pupil moving to the UPRN of a person living alone joins their household.
        delivery, row = con.execute(f"""select delivery_id, min(row_number) from linkage.person_records
            anti join y.identity.linkage_deliveries using (contract_id, delivery_id)
            where contract_id = '{MOVER_CONTRACT}' group by 1 order by 1 limit 1""").fetchall()[0]
        mover = con.execute("""select person_id from linkage.person_records
            where contract_id = ? and delivery_id = ? and row_number = ?""", [MOVER_CONTRACT, delivery, row]).fetchall()[0][0]
        households = con.execute("""
            select list(distinct p.household_id), list(distinct q.household_id)
            from identity.linkage_person_addresses p join y.identity.linkage_person_addresses q using (person_id)
            where person_id = ? or q.last_uprn = (select last_uprn from identity.linkage_person_addresses where person_id = ?)""",
            [mover, mover]).fetchall()[0]
        assert len(households[0]) == 1 and len(households[1]) == 2
        # 4. Someone in a pair for clerical review, linked again tonight, still has their rows.
        reviewed = con.execute(f"""select count(*) from identity.linkage_clerical_review where person_id_l in ({tonight})
                                   or person_id_r in ({tonight})""").fetchall()[0][0]
        assert reviewed > 0
        # The opt-out list changed for people with no record tonight (`_withdraw_and_opt_out`).
        flips = con.execute(f"""select count(*) filter (where p.opted_out), count(*) filter (where q.opted_out)
                                from linkage.persons p join y.linkage.persons q using (person_id)
                                where p.opted_out <> q.opted_out and person_id not in ({tonight})""").fetchall()[0]
        assert flips[0] >= 1 and flips[1] >= 1
    finally:
        con.close()


def test_the_first_night_after_the_upgrade_links_everything_and_the_next_only_what_changed(nights, tmp_path):
    """A warehouse made by the code before incremental linkage (no stored state; each record's
    identifiers stored in `identity.linkage_records`, a table, without a profile key): its first
    night links everything, as a from-scratch night would; the next night with nothing new
    changes nothing."""
    settings, tmp, yesterday, _, (full, rescored) = nights
    upgraded = _today(settings, tmp_path, "upgraded", yesterday, scoring_state=True, changes=True)
    con = duckdb.connect(str(upgraded.warehouse_path))
    try:
        con.execute("create table identity._old_records as select * exclude (pkey) from identity.linkage_records")
        con.execute("drop view identity.linkage_records")
        con.execute(f"drop table identity.{RECORD_KEYS}")
        con.execute("alter table identity._old_records rename to linkage_records")
        for t in DELTA_TABLES:
            con.execute(f"drop table identity.{t}")
    finally:
        con.close()
    first = run_linkage(upgraded, contracts())
    assert not first.incremental and not first.full_rescore
    assert _tables_differ(upgraded, full) == {}
    again = Settings(tmp_path / "again")
    _copy(upgraded, again)
    # Without last night's copy of the gazetteer's table, a night reads the file and writes it again.
    con = duckdb.connect(str(again.warehouse_path))
    try:
        con.execute(f"drop table identity.{ADDRESS_TABLE}")
    finally:
        con.close()
    second = run_linkage(again, contracts())
    assert second.incremental and second.records_linked == 0 and second.profiles_scored == 0 and second.spells_worked_out == 0
    assert _tables_differ(again, upgraded) == {}
    # Retention purges a delivery's linkage rows with it, behind linkage's back: the next night
    # cannot carry the state forward, and links everything again.
    con = duckdb.connect(str(again.warehouse_path))
    try:
        contract, delivery = con.execute("""select contract_id, max(delivery_id) from linkage.person_records
                                            group by 1 order by 1 limit 1""").fetchall()[0]
        for table in (f'valid."{contract}"', f'identity."{contract}"'):
            con.execute(f"delete from {table} where _delivery_id = ?", [delivery])
        for table in ("linkage.person_records", f"identity.{RECORD_KEYS}"):
            con.execute(f"delete from {table} where contract_id = ? and delivery_id = ?", [contract, delivery])
    finally:
        con.close()
    third = run_linkage(again, contracts())
    assert not third.incremental and not coverage_gaps(again, contracts())


def test_an_incremental_night_logs_every_person_and_household_it_changed_and_a_full_link_logs_everyone(nights):
    """Every person a row of person_records left, joined or changed on is logged, and exactly the households a spell
    of household_members joined, left or changed in; a full link logs everyone (no person)."""
    _, _, yesterday, (incremental, inc), (full, _) = nights
    last = "select {1}_id from {0}linkage.{1}_changes where link_run = (select max(link_run) from {0}linkage.{1}_changes)"
    spells = "select household_id, person_id, valid_from, valid_to from {0}linkage.household_members"
    with duckdb.connect(str(incremental.warehouse_path), read_only=True) as con:
        con.execute(f"attach '{yesterday.warehouse_path}' as y (read_only); attach '{full.warehouse_path}' as f (read_only)")
        changed = {p for (p,) in con.execute("""
            select person_id from (select * from y.linkage.person_records except all select * from linkage.person_records)
            union select person_id from (select * from linkage.person_records except all select * from y.linkage.person_records)""").fetchall()}
        assert len(changed) > 3 and changed <= (logged := {p for (p,) in con.execute(last.format("", "person")).fetchall()})
        assert None not in logged and len(logged) < 0.2 * inc.persons and con.execute(last.format("f.", "person")).fetchall() == [(None,)]
        a, b = spells.format("y."), spells.format("")
        moved = {h for (h,) in con.execute(f"select household_id from (({a} except {b}) union all ({b} except {a}))").fetchall()}
        assert moved and {h for (h,) in con.execute(last.format("", "household")).fetchall()} == moved
