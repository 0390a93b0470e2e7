"""Households and Supporting Families families on the small demo night, against the generator's
truth: households compared date by date, the SF-01 cohort with an independent computation
(tests/oracles/supporting_families.py)."""

import duckdb
import pytest

from orchestration.partnership.linkage.household_quality import PRECISION_TARGET, RECALL_TARGET
from orchestration.partnership.linkage.quality import evaluate
from tests.oracles.supporting_families import (
    _add_months,
    compare,
    people_with_records,
    sustained_improvement,
    true_families,
)

pytestmark = pytest.mark.dbt_free


def _named_families(settings) -> tuple[list, dict]:
    """The quarters, and {(quarter, household): true people of its named members} of the families
    meeting the criteria."""
    truth = settings.truth_dir
    con = duckdb.connect()
    try:
        con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        con.execute(f"""create table labelled as
            select p.person_id as pred, t.person_id as truth
            from wh.linkage.person_records p join wh.ops.deliveries d using (delivery_id)
            join read_parquet('{truth / "records.parquet"}') t
              on t.agency = d.agency and t.extract = d.extract and t.file_name = d.file_name
             and t.row_number = p.row_number""")
        quarters = [r[0] for r in con.execute(
            "select distinct period_start from wh.intermediate.int_family_quarters order by 1").fetchall()]
        rows = con.execute("""
            select m.period_start, m.household_id, list(distinct l.truth)
            from wh.intermediate.int_family_members m
            join wh.intermediate.int_family_quarters f using (period_start, household_id)
            join labelled l on l.pred = m.person_id
            where f.meets_programme_criteria group by all""").fetchall()
    finally:
        con.close()
    return quarters, {(q, h): set(people) for q, h, people in rows}


def test_households_at_quarter_ends_meet_the_precision_and_recall_targets(demo_night):
    settings, _ = demo_night
    h = evaluate(settings).households
    print(f"\nhouseholds at {len(h['dates'])} quarter ends, {h['people']} people with an address record: "
          f"precision {100 * h['precision']:.2f}%, recall {100 * h['recall']:.2f}% of {h['true_pairs']} pairs")
    assert h["people"] > 300
    assert h["true_pairs"] > 300
    assert h["precision"] >= PRECISION_TARGET
    assert h["recall"] >= RECALL_TARGET


def test_the_supporting_families_cohort_names_no_wrong_family_and_no_wrong_member(demo_night):
    settings, _ = demo_night
    quarters, named = _named_families(settings)
    truth = true_families(settings.warehouse_path, settings.truth_dir, quarters)
    recorded, addressed = people_with_records(settings.warehouse_path, settings.truth_dir)
    result = compare(named, truth, recorded, addressed)
    print(f"\nSF-01 over {len(quarters)} quarters against the truth: {result}")
    assert len(quarters) >= 4 and result.families_true > 100 and result.members_true > 400
    assert result.family_precision >= 0.99
    assert result.member_precision >= 0.99
    # Recall against every true family, whatever its members' records.
    assert result.family_recall >= 0.95
    # Members: the target is 95% of the members the partnership holds a record of, and of those with
    # a record carrying an address (as for households); people with no record at all (about 3.5% of
    # the true members) cannot be found by any linkage, so they are counted apart (`member_recall`).
    assert result.members_true_recorded > 400 and result.members_true_addressed > 400
    assert result.member_recall_recorded >= 0.95
    assert result.member_recall_addressed >= 0.95
    assert result.members_true - result.members_true_recorded < 0.05 * result.members_true


def test_sf01_counts_the_true_families_within_what_precision_and_recall_allow(demo_night):
    settings, _ = demo_night
    quarters, named = _named_families(settings)
    truth = true_families(settings.warehouse_path, settings.truth_dir, quarters)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        values = dict(con.execute("""select period_start, value from intermediate.int_indicator_sf_01
                                     where geography_type = 'district'""").fetchall())
        located = dict(con.execute("""select period_start, count(*) from intermediate.int_family_quarters
                                      where meets_programme_criteria and ward_code is not null group by 1""").fetchall())
    for q in quarters:
        true_count = sum(1 for f in truth if f.quarter == q)
        assert values.get(q, 0) == located.get(q, 0)
        # a named family is a true family or one of the 1% precision allows; and no more than the
        # families recall misses (2%) are missing
        assert values.get(q, 0) <= true_count + 0.01 * values.get(q, 0) + 1, (q, values.get(q), true_count)
        assert values.get(q, 0) >= true_count - 0.02 * true_count - 1, (q, values.get(q), true_count)


def test_the_identifiable_release_names_only_people_living_at_the_family_address(demo_night):
    settings, _ = demo_night
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        cohort = con.execute("select count(*) from marts.fct_supporting_families_cohort").fetchall()[0][0]
        unjustified = con.execute("""
            select count(*) from marts.fct_supporting_families_cohort c
            where not exists (
                select 1 from linkage.household_members m
                where m.household_id = c.household_id and m.person_id = c.person_id
                  and (m.valid_from is null or m.valid_from <= c.period_end)
                  and (m.valid_to is null or c.period_end <= m.valid_to))""").fetchall()[0][0]
        reviewed = con.execute("""
            select count(*) from marts.fct_supporting_families_cohort c
            join identity.linkage_household_review r using (household_id, person_id)""").fetchall()[0][0]
        # People whose address line is only close to the household's address are listed, never members.
        near = con.execute("""
            select count(*), count(*) filter (where exists (
                select 1 from linkage.household_members m where m.household_id = r.household_id and m.person_id = r.person_id))
            from identity.linkage_household_review r where r.reason like '%address line close%'""").fetchall()[0]
        evidence = {e for (e,) in con.execute("select distinct evidence from linkage.household_members").fetchall()}
        review_rows = con.execute("select count(*) from identity.linkage_household_review").fetchall()[0][0]
        review_elsewhere = con.execute("""select count(*) from duckdb_tables()
                                          where table_name like '%household_review%' and schema_name <> 'identity'""").fetchall()[0][0]
    assert cohort > 0 and unjustified == 0
    assert review_rows > 0 and reviewed == 0 and review_elsewhere == 0
    assert near[0] > 0 and near[1] == 0
    assert evidence == {"address", "address_line", "shared_event"}


def test_sf02_equals_the_independent_computation_but_for_families_the_cohorts_differ_in(demo_night):
    settings, _ = demo_night
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        values = {p: (int(n), int(d)) for p, n, d in con.execute("""
            select period_start, numerator, denominator from intermediate.int_indicator_sf_02
            where geography_type = 'district'""").fetchall()}
    _, named = _named_families(settings)
    identified = sorted({_add_months(p, -12) for p in values})
    truth = true_families(settings.warehouse_path, settings.truth_dir, identified)
    oracle = sustained_improvement(settings.warehouse_path, settings.truth_dir, truth, sorted(values))
    print(f"\nSF-02 (numerator, denominator) by quarter: warehouse {values}, truth {oracle}")
    assert values and sum(d for _, d in values.values()) >= 30
    for p, (n, d) in values.items():
        q = _add_months(p, -12)
        # a family the warehouse names that is not a true family exactly (a wrong or missing member,
        # or a wrong family), or a true family it does not name, may change either count by one
        differ = len({frozenset(m) for (k, _), m in named.items() if k == q} ^ {f.members for f in truth if f.quarter == q})
        t_n, t_d = oracle[p]
        assert abs(d - t_d) <= differ, (p, d, t_d, differ)
        assert abs(n - t_n) <= differ, (p, n, t_n, differ)
