"""Person ids survive a rerun with one more day of deliveries, and that night scores only
the profiles it has not seen, linking exactly as a full re-score would."""

import shutil

import duckdb

from orchestration.defs.catalogue import contracts
from orchestration.partnership.linkage import run_linkage
from orchestration.partnership.linkage.pipeline import STATE_TABLES
from orchestration.partnership.settings import Settings

LINKAGE_TABLES = ("person_records", "persons", "id_sequence")


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
        for t in STATE_TABLES:
            con.execute(f"drop table if exists identity.{t}")
    finally:
        con.close()
    run_linkage(yesterday, contracts())
    return yesterday


def _today(settings: Settings, tmp_path, name: str, yesterday: Settings, scoring_state: bool) -> Settings:
    """The full warehouse, with yesterday's person index (and, if asked, what it scored) as last night's."""
    today = Settings(tmp_path / name)
    _copy(settings, today)
    con = duckdb.connect(str(today.warehouse_path))
    try:
        con.execute(f"attach '{yesterday.warehouse_path}' as y (read_only)")
        for t in LINKAGE_TABLES:
            con.execute(f"create or replace table linkage.{t} as select * from y.linkage.{t}")
        for t in STATE_TABLES:
            if scoring_state:
                con.execute(f"create or replace table identity.{t} as select * from y.identity.{t}")
            else:
                con.execute(f"drop table if exists identity.{t}")
    finally:
        con.close()
    return today


def test_a_rerun_with_one_more_day_of_deliveries_keeps_person_ids(demo_night, tmp_path):
    settings, _ = demo_night
    yesterday = _yesterday(settings, tmp_path)
    before = _ids(yesterday.warehouse_path)
    today = _today(settings, tmp_path, "today", yesterday, scoring_state=True)
    summary = run_linkage(today, contracts())
    after = _ids(today.warehouse_path)

    new_rows = set(after) - set(before)
    assert new_rows, "the last day brought new rows"
    assert set(before) <= set(after)
    changed = [k for k in before if before[k][0] != after[k][0]]
    kept = 1 - len(changed) / len(before)
    persons_before = {p for p, _ in before.values()}
    persons_after = {p for p, _ in after.values()}
    print(f"\nstability: {len(before)} rows of yesterday, {len(new_rows)} new; {kept:.3%} keep their person id; "
          f"{len(persons_before - persons_after)} person ids retired, {summary.new_persons} new persons")
    assert kept >= 0.999
    assert len(persons_before & persons_after) >= 0.999 * len(persons_before)
    # new people get new numbers, never a retired one
    assert not (persons_after - persons_before) & persons_before
    hh_kept = sum(before[k][1] == after[k][1] for k in before) / len(before)
    assert hh_kept >= 0.99


def _identities(path) -> set[tuple]:
    """Distinct identifying values of the linked records (what a profile is), read back."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return set(con.execute("""select distinct nhs_number, upn, uprn, local_id, forename, surname, date_of_birth,
                                         sex, postcode from identity.linkage_records""").fetchall())
    finally:
        con.close()


def test_a_night_scores_only_new_profiles_and_links_as_a_full_rescore_would(demo_night, tmp_path):
    settings, _ = demo_night
    yesterday = _yesterday(settings, tmp_path)
    incremental = _today(settings, tmp_path, "incremental", yesterday, scoring_state=True)
    inc = run_linkage(incremental, contracts())
    full = _today(settings, tmp_path, "full", yesterday, scoring_state=True)
    rescored = run_linkage(full, contracts(), rescore=True)

    # Only profiles yesterday had not seen were scored (counted here from the records themselves).
    unseen = _identities(incremental.warehouse_path) - _identities(yesterday.warehouse_path)
    print(f"\nincremental night: {inc.profiles_scored} of {inc.profiles} profiles scored "
          f"({inc.records_scored} records), {inc.pairs_found_tonight} pairs found tonight; "
          f"full re-score: {rescored.profiles_scored} profiles, {rescored.pairs_found_tonight} pairs; "
          f"seconds predicting {inc.seconds['predict']} vs {rescored.seconds['predict']}")
    assert not inc.full_rescore and rescored.full_rescore
    assert inc.profiles_scored == len(unseen) > 0
    assert inc.profiles_scored < 0.2 * inc.profiles
    assert rescored.profiles_scored == rescored.profiles == inc.profiles
    assert inc.pairs_found_tonight < rescored.pairs_found_tonight
    # ... and the same pairs, people and ids as scoring everything again.
    assert inc.probabilistic_pairs_scored == rescored.probabilistic_pairs_scored
    assert inc.clerical_review_pairs == rescored.clerical_review_pairs
    assert _ids(incremental.warehouse_path) == _ids(full.warehouse_path)
    con = duckdb.connect(str(incremental.warehouse_path), read_only=True)
    try:
        con.execute(f"attach '{full.warehouse_path}' as f (read_only)")
        differing = con.execute("""select count(*) from identity.linkage_scored_pairs i
                                   full join f.identity.linkage_scored_pairs r using (pkey_a, pkey_b)
                                   where i.match_probability is distinct from r.match_probability""").fetchall()[0][0]
    finally:
        con.close()
    assert differing == 0
