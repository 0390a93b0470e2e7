"""Person ids survive a rerun with one more day of deliveries."""

import shutil

import duckdb

from orchestration.defs.catalogue import contracts
from orchestration.partnership.linkage import run_linkage
from orchestration.partnership.settings import Settings


def _ids(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {(c, d, r): (p, h) for c, d, r, p, h in con.execute(
            "select contract_id, delivery_id, row_number, person_id, household_id from linkage.person_records").fetchall()}
    finally:
        con.close()


def test_a_rerun_with_one_more_day_of_deliveries_keeps_person_ids(demo_night, tmp_path):
    settings, _ = demo_night
    yesterday = Settings(tmp_path / "yesterday")
    today = Settings(tmp_path / "today")
    for s in (yesterday, today):
        (s.data_dir / "linkage").mkdir(parents=True)
        shutil.copy(settings.warehouse_path, s.warehouse_path)
        shutil.copy(settings.data_dir / "linkage" / "model.json", s.data_dir / "linkage" / "model.json")
    # Yesterday: the same warehouse without the deliveries that arrived on the last day.
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
        for t in ("person_records", "persons", "id_sequence"):
            con.execute(f"drop table if exists linkage.{t}")
    finally:
        con.close()
    run_linkage(yesterday, contracts())
    before = _ids(yesterday.warehouse_path)
    # Today: the full warehouse, with yesterday's person index as last night's.
    con = duckdb.connect(str(today.warehouse_path))
    try:
        con.execute(f"attach '{yesterday.warehouse_path}' as y (read_only)")
        for t in ("person_records", "persons", "id_sequence"):
            con.execute(f"create or replace table linkage.{t} as select * from y.linkage.{t}")
    finally:
        con.close()
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
