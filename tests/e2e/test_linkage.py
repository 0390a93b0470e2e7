"""Linkage on the small demo night (seed 42), measured against the generator's truth."""

import duckdb
import polars as pl
import pytest

from orchestration.partnership.linkage.quality import (
    PRECISION_TARGET,
    RECALL_TARGET,
    evaluate,
    write_quality_report,
)

pytestmark = pytest.mark.dbt_free


def test_linkage_meets_precision_and_recall_targets_on_the_small_preset(demo_night):
    settings, _ = demo_night
    quality = evaluate(settings)
    write_quality_report(settings, quality)
    print("\n" + quality.table())
    assert quality.records_unmatched_to_truth == 0
    assert quality.overall.precision >= PRECISION_TARGET
    assert quality.overall.recall >= RECALL_TARGET
    # every pair of agencies that shares people is measured
    assert len(quality.by_agency_pair) >= 20


def test_every_valid_person_row_has_exactly_one_person(demo_night):
    settings, _ = demo_night
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'valid' and table_name <> 'nhs_optout__opt_outs'").fetchall()]
        for t in tables:
            valid, linked, dupes = con.execute(f"""
                select (select count(*) from valid."{t}"),
                       (select count(*) from valid."{t}" v join linkage.person_records p
                          on p.contract_id = '{t}' and p.delivery_id = v._delivery_id and p.row_number = v._row_number),
                       (select count(*) - count(distinct (delivery_id, row_number)) from linkage.person_records
                          where contract_id = '{t}')""").fetchall()[0]
            assert valid == linked and dupes == 0, t
        orphans = con.execute("""select count(*) from linkage.person_records r
                                 left join linkage.persons p using (person_id) where p.person_id is null""").fetchall()[0][0]
        assert orphans == 0
    finally:
        con.close()


def test_an_opt_out_reaches_every_agencys_rows_about_that_person(demo_night):
    settings, _ = demo_night
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.sql(f"""
            with known as (  -- people whose NHS number some agency delivered: the list can only name them
                select distinct t.person_id from identity.linkage_records l join ops.deliveries d using (delivery_id)
                join read_parquet('{settings.truth_dir / "records.parquet"}') t
                  on t.agency = d.agency and t.extract = d.extract and t.file_name = d.file_name and t.row_number = l.row_number
                where l.nhs_number is not null)
            select d.agency, r.opted_out, t.person_id as true_person,
                   p.opted_out and t.person_id in (select person_id from known) as truly_opted_out
            from linkage.person_records r join ops.deliveries d using (delivery_id)
            join read_parquet('{settings.truth_dir / "records.parquet"}') t
              on t.agency = d.agency and t.extract = d.extract and t.file_name = d.file_name and t.row_number = r.row_number
            join read_parquet('{settings.truth_dir / "people.parquet"}') p on p.person_id = t.person_id""").pl()
        # flagged once per person: all rows of one person agree
        per_person = con.sql("select person_id, count(distinct opted_out) n from linkage.person_records group by 1 having n > 1").fetchall()
    finally:
        con.close()
    assert per_person == []
    opted = rows.filter(pl.col("truly_opted_out"))
    assert opted.height > 0
    recall = opted["opted_out"].mean()
    false_flags = rows.filter(~pl.col("truly_opted_out"))["opted_out"].mean()
    print(f"\nopt-out flag: {recall:.2%} of rows of opted-out people flagged; {false_flags:.3%} of other rows flagged")
    assert recall >= 0.99
    assert false_flags <= 0.001
    # the flag reaches agencies that never hold an NHS number (fire, police, voluntary sector)
    no_nhs = opted.filter(pl.col("agency").is_in(["riverside_fire", "county_police", "riverside_agewell"]))
    # (bounded by linkage recall for those agencies: fire rows carry no postcode, only a UPRN)
    print(f"opt-out flag on rows of agencies without NHS numbers: {no_nhs['opted_out'].mean():.2%} of {no_nhs.height}")
    assert no_nhs.height > 0 and no_nhs["opted_out"].mean() >= 0.80


def test_the_identity_schema_holds_the_identifying_values_and_valid_does_not(demo_night):
    settings, _ = demo_night
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        cols = {(s, t, c) for s, t, c in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns").fetchall()}
        review = con.execute("select count(*) from identity.linkage_clerical_review").fetchall()[0][0]
        linkage_cols = {c for s, t, c in cols if s == "linkage"}
    finally:
        con.close()
    for s, t, c in cols:
        if s in ("valid", "linkage", "staging", "marts", "intermediate"):
            assert c not in ("nhs_number", "forename", "surname", "upn", "uprn", "nominal_id", "child_id"), (s, t, c)
    assert ("identity", "linkage_records", "forename") in cols
    assert ("identity", "linkage_records", "date_of_birth") in cols
    assert {"person_id", "household_id", "opted_out", "match_method", "match_probability"} <= linkage_cols
    assert review > 0  # borderline pairs are put up for clerical review
    assert (settings.data_dir / "linkage" / "model.json").exists()
