"""Person-level releases on a small real warehouse: recipient-specific pseudonyms, opt-outs,
consent, area and age filters, the identifiable level's named columns only, and fail-closed audit."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import polars as pl
import pytest

import orchestration.partnership.releases.audit as audit
import orchestration.partnership.releases.build as build
import orchestration.partnership.releases.publish as rel
import orchestration.partnership.releases.scope as scope
import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership.releases.protocols import load_protocol
from orchestration.partnership.settings import PROJECT_ROOT

pytestmark = pytest.mark.dbt_free

PROTOCOLS = PROJECT_ROOT / "contracts" / "protocols"
ANALYSTS = load_protocol(PROTOCOLS / "falls-analysts.yaml")
FAMILIES = load_protocol(PROTOCOLS / "supporting-families.yaml")
DAY = date(2026, 11, 28)
KEY = "integration-key-" + "0123456789abcdef" * 3


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv(ps.KEY_ENV, KEY)
    monkeypatch.delenv(ps.KEY_FILE_ENV, raising=False)
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        for s in ("marts", "ops", "linkage", "reference", "identity", "valid"):
            con.execute(f"create schema {s}")
        con.execute("create table ops.deliveries (contract_id varchar, agency varchar, file_name varchar, sha256 varchar, status varchar)")
        # As ingestion leaves it: the fingerprint of the key the warehouse was built with.
        con.execute("create table ops.settings (name varchar primary key, value varchar not null)")
        con.execute("insert into ops.settings values ('key_fingerprint', ?)", [ps.fingerprint(KEY.encode())])
        con.execute("""create table reference.geography_wards as select * from (values
            ('E05900001', 'Harbour', 'E07900001', 'Riverside'), ('E05900002', 'Castle', 'E07900001', 'Riverside'),
            ('E05999999', 'Elsewhere', 'E07999999', 'Other')) t(ward_code, ward_name, district_code, district_name)""")
        con.execute("""create table reference.geography_lsoas as select * from (values
            ('E01900001', 'Riverside 001A', 'E05900001'), ('E01900002', 'Riverside 002A', 'E05900002'),
            ('E01999999', 'Other 001A', 'E05999999')) t(lsoa_code, lsoa_name, ward_code)""")
        con.execute("""create table linkage.persons as select * from (values
            ('LP1', 'LH1', false, 2), ('LP2', 'LH2', true, 2), ('LP3', 'LH3', false, 1), ('LP4', 'LH4', false, 1),
            ('LP5', 'LH5', false, 1), ('LP6', 'LH6', false, 1), ('LP7', 'LH1', false, 2)) t(person_id, household_id, opted_out, records)""")
        con.execute("""create table marts.fct_falls_pathway_events as select * from (values
            ('LP1', '70-74', 'F', 'E01900001', date '2026-03-01', 'fall_admission', 'riverside_acute', false, true, null),
            ('LP2', '80-84', 'M', 'E01900002', date '2026-04-01', 'fall_admission', 'riverside_acute', true, true, null),
            ('LP2', '80-84', 'M', 'E01900002', date '2026-05-01', 'safe_and_well_visit', 'riverside_fire', true, false, null),
            ('LP3', '75-79', 'F', 'E01900001', date '2026-05-01', 'falls_class_referral', 'riverside_agewell', false, false, false),
            ('LP4', '75-79', 'F', 'E01900001', date '2026-06-01', 'falls_class_referral', 'riverside_agewell', false, false, true),
            ('LP5', '70-74', 'M', 'E01999999', date '2026-06-01', 'fall_admission', 'riverside_acute', false, true, null),
            ('LP6', '60-64', 'M', 'E01900002', date '2026-06-01', 'fall_ae_attendance', 'riverside_acute', false, true, null)
            ) t(person_id, age_band, sex, lsoa_code, event_month, event_type, agency, opted_out, is_health_derived, consent_to_share)""")
        # Supporting Families: one family (LH1: LP1, LP7, and LP6, whom only an A&E attendance places
        # there) in the cohort, one not
        csc, ae = "['county_council__children_social_care_referrals']", "['riverside_acute__ae_attendances']"
        con.execute(f"""create table marts.fct_supporting_families_cohort as select * from (values
            (date '2026-07-01', 'LH1', 'LP1', 'E05900001', true, true, false, true, false, false, 3, true, {csc}, null),
            (date '2026-07-01', 'LH1', 'LP7', 'E05900001', true, true, false, true, false, false, 3, true, {csc}, null),
            (date '2026-07-01', 'LH1', 'LP6', 'E05900001', true, true, false, true, false, false, 3, true, {ae}, null),
            (date '2026-07-01', 'LH3', 'LP3', 'E05900002', true, false, false, false, false, false, 1, false, {csc}, null)
            ) t(period_start, household_id, person_id, ward_code, crime_asb, school_attendance, domestic_abuse,
                child_in_need, homelessness, adult_social_care, criteria_met, meets_programme_criteria,
                placement_sources, placement_event_sources)""")
        con.execute(f"""create table linkage.household_members as select * from (values
            ('LH1', 'LP1', 'address', {csc}), ('LH1', 'LP7', 'address', {csc}), ('LH1', 'LP6', 'address_line', {ae}),
            ('LH3', 'LP3', 'address', {csc})) t(household_id, person_id, evidence, sources),
            (select cast(null as date) as valid_from, cast(null as date) as valid_to, cast(null as varchar[]) as event_sources)""")
        con.execute("""create table linkage.person_records as select * from (values
            ('county_council__children_social_care_referrals', 1, 1, 'LP1', 'LH1', 'local_id', null, false),
            ('county_council__children_social_care_referrals', 1, 2, 'LP7', 'LH1', 'local_id', null, false),
            ('county_council__children_social_care_referrals', 1, 3, 'LP3', 'LH3', 'local_id', null, false),
            ('riverside_acute__emergency_admissions', 1, 1, 'LP1', 'LH1', 'nhs_number', null, false)
            ) t(contract_id, delivery_id, row_number, person_id, household_id, match_method, match_probability, opted_out)""")
        con.execute("""create table identity.county_council__children_social_care_referrals as select * from (values
            (1, 1, 'Ada', 'Lovelace'), (1, 2, 'Tom', 'Lovelace'), (1, 3, 'Zed', 'Quill')
            ) t(_delivery_id, _row_number, forename, surname)""")
        con.execute("""create table valid.county_council__children_social_care_referrals as select * from (values
            (1, 1, date '1990-02-03', 'RV1 1AA'), (1, 2, date '2015-06-07', 'RV1 1AA'), (1, 3, date '2012-01-01', 'RV2 2BB')
            ) t(_delivery_id, _row_number, date_of_birth, postcode)""")
        con.execute("""create table identity.riverside_acute__emergency_admissions as select * from (values
            (1, 1, '9434765919', 'Ada', 'Lovelace')
            ) t(_delivery_id, _row_number, nhs_number, forename, surname)""")
    return path


def test_the_pseudonymised_release_holds_only_allowed_rows_with_this_recipients_pseudonyms(warehouse, tmp_path):
    result = rel.release(warehouse, tmp_path / "releases", ANALYSTS, DAY, reports_dir=tmp_path / "reports")
    assert result.status == "published", result.reason
    df = pl.read_parquet(result.path / "parquet" / "falls_pathway_events.parquet")
    assert df.columns == ["person_ref", "age_band", "sex", "lsoa_code", "event_month", "event_type", "agency"]
    key = KEY.encode()
    ref = {p: ps.hmac_python(key, p, ANALYSTS.pseudonym_context) for p in ("LP1", "LP2", "LP4")}
    got = sorted((r["person_ref"], r["event_type"]) for r in df.iter_rows(named=True))
    # LP2's admission: opted out, health-derived; LP3: no consent; LP5: outside the district; LP6: under 65
    assert got == sorted([(ref["LP1"], "fall_admission"), (ref["LP2"], "safe_and_well_visit"),
                          (ref["LP4"], "falls_class_referral")])
    assert not set(df["person_ref"]) & {"LP1", "LP2", "LP4"}
    report = json.loads((tmp_path / "reports" / "releases" / f"{DAY}.json").read_text())
    assert report["protocols"]["falls-analysts"]["status"] == "published"


def test_the_same_person_has_different_ids_in_two_recipients_releases(warehouse, tmp_path):
    a = rel.release(warehouse, tmp_path / "releases", ANALYSTS, DAY)
    f = rel.release(warehouse, tmp_path / "releases", FAMILIES, DAY)
    assert (a.status, f.status) == ("published", "published"), (a.reason, f.reason)
    analysts = set(pl.read_parquet(a.path / "parquet" / "falls_pathway_events.parquet")["person_ref"])
    families = set(pl.read_parquet(f.path / "parquet" / "family_members.parquet")["person_ref"])
    key = KEY.encode()
    assert ps.hmac_python(key, "LP1", ANALYSTS.pseudonym_context) in analysts
    assert ps.hmac_python(key, "LP1", FAMILIES.pseudonym_context) in families
    assert not analysts & families


def test_the_identifiable_release_holds_the_cohort_and_only_the_named_columns(warehouse, tmp_path):
    result = rel.release(warehouse, tmp_path / "releases", FAMILIES, DAY)
    df = pl.read_parquet(result.path / "parquet" / "family_members.parquet")
    assert df.columns == FAMILIES.outputs[0]["columns"]
    assert sorted(zip(df["forename"], df["surname"], df["postcode"])) == [("Ada", "Lovelace", "RV1 1AA"), ("Tom", "Lovelace", "RV1 1AA")]
    assert df["family_ref"].n_unique() == 1 and set(df["criteria_met"]) == {3}
    # LP6, placed at the family's address by an A&E attendance alone, is not named but listed for review
    assert result.held_for_review == 1
    with duckdb.connect(str(warehouse), read_only=True) as con:
        review = con.execute("select household_id, person_id, reason from identity.release_member_review").fetchall()
    assert [(h, p) for h, p, _ in review] == [("LH1", "LP6")] and "riverside_acute__ae_attendances" in review[0][2]
    with duckdb.connect(str(result.path / "supporting-families.duckdb"), read_only=True) as con:
        assert con.execute("select table_name from information_schema.tables").fetchall() == [("family_members",)]


def test_when_the_builder_forgets_the_opt_out_the_audit_blocks_and_nothing_is_published(warehouse, tmp_path, monkeypatch):
    original = scope.row_conditions
    monkeypatch.setattr(scope, "row_conditions", lambda out: original({k: v for k, v in out.items() if k != "opt_out"}))
    with pytest.raises(rel.ReleaseBlocked, match="opt-out"):
        rel.release(warehouse, tmp_path / "releases", ANALYSTS, DAY)
    assert not any((tmp_path / "releases" / "falls-analysts").glob("*"))


def test_when_the_builder_forgets_consent_the_audit_blocks(warehouse, tmp_path, monkeypatch):
    original = scope.row_conditions
    monkeypatch.setattr(scope, "row_conditions", lambda out: original({k: v for k, v in out.items() if k != "consent"}))
    with pytest.raises(rel.ReleaseBlocked, match="without consent"):
        rel.release(warehouse, tmp_path / "releases", ANALYSTS, DAY)


def test_when_the_builder_uses_another_recipients_key_the_audit_blocks(warehouse, tmp_path, monkeypatch):
    from orchestration.partnership.releases.protocols import Protocol

    monkeypatch.setattr(Protocol, "pseudonym_context", property(lambda self: FAMILIES.doc and "release-recipient:county-early-help"))
    with pytest.raises(rel.ReleaseBlocked):
        rel.release(warehouse, tmp_path / "releases", ANALYSTS, DAY)


def test_a_missing_source_mart_publishes_nothing_and_says_why(warehouse, tmp_path):
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table marts.fct_supporting_families_cohort")
    result = rel.release(warehouse, tmp_path / "releases", FAMILIES, DAY, reports_dir=tmp_path / "reports")
    assert result.status == "blocked" and "fct_supporting_families_cohort" in result.reason
    assert not (tmp_path / "releases" / "supporting-families").exists()


def test_the_expired_asb_protocol_produces_nothing_and_the_report_says_why(warehouse, tmp_path):
    protocol = load_protocol(PROTOCOLS / "asb-hotspots-2025.yaml")
    result = rel.release(warehouse, tmp_path / "releases", protocol, DAY, reports_dir=tmp_path / "reports")
    assert result.status == "not_in_force" and "expired on 2026-03-31" in result.reason
    assert not (tmp_path / "releases").exists()
    entry = json.loads((tmp_path / "reports" / "releases" / f"{DAY}.json").read_text())["protocols"]["asb-hotspots-2025"]
    assert entry["status"] == "not_in_force" and "expired" in entry["reason"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select status, reason from ops.release_log").fetchall() == [("not_in_force", result.reason)]


def test_person_level_releases_are_not_recomputed_on_the_same_inputs_and_are_when_a_person_opts_out(warehouse, tmp_path, monkeypatch):
    first = {p.id: rel.release(warehouse, tmp_path / "releases", p, DAY) for p in (ANALYSTS, FAMILIES)}
    assert {r.status for r in first.values()} == {"published"}
    calls = []
    real = build.build_tables
    monkeypatch.setattr(build, "build_tables", lambda *a, **k: calls.append(a[1].id) or real(*a, **k))
    for p in (ANALYSTS, FAMILIES):
        again = rel.release(warehouse, tmp_path / "releases", p, date(2026, 11, 29))
        assert (again.status, again.path) == ("unchanged", first[p.id].path) and "not recomputed" in again.reason
    assert calls == []
    with duckdb.connect(str(warehouse)) as con:  # LP1 opts out in the person index, and nowhere else
        con.execute("update linkage.persons set opted_out = true where person_id = 'LP1'")
    nxt = rel.release(warehouse, tmp_path / "releases", ANALYSTS, date(2026, 11, 30))
    assert calls == ["falls-analysts"] and nxt.status == "published"
    df = pl.read_parquet(nxt.path / "parquet" / "falls_pathway_events.parquet")
    assert ps.hmac_python(KEY.encode(), "LP1", ANALYSTS.pseudonym_context) not in set(df["person_ref"])
    # the same recipient context with another key is refused before anything is compared or computed
    monkeypatch.setenv(ps.KEY_ENV, "another-key-" + "f" * 40)
    with pytest.raises(ps.PseudonymKeyError):
        rel.release(warehouse, tmp_path / "releases", ANALYSTS, date(2026, 12, 1))



def test_the_audit_hashes_every_source_id_as_the_standard_librarys_hmac_for_each_recipient(warehouse):
    key = KEY.encode()
    contexts = {"mine": ANALYSTS.pseudonym_context, "theirs": FAMILIES.pseudonym_context}
    with audit.Zone(warehouse) as zone:
        hashed = zone.hashed_ids("marts.fct_falls_pathway_events", "person_id", key, contexts)
    assert hashed["id"].to_list() == ["LP1", "LP2", "LP3", "LP4", "LP5", "LP6"]  # the source's ids the index knows
    for name, context in contexts.items():
        assert hashed[name].to_list() == [ps.hmac_python(key, i, context) for i in hashed["id"]]


def test_pseudonyms_of_another_recipients_key_block_whether_or_not_the_audit_shares_that_key(warehouse, tmp_path, monkeypatch,
                                                                                               request):
    from orchestration.partnership.releases.protocols import Protocol

    real = ps.hmac_pads
    with monkeypatch.context() as m:  # the builder alone uses the families' key: not ours, and theirs
        m.setattr(ps, "hmac_pads", lambda key, context="": real(key, FAMILIES.pseudonym_context))
        with pytest.raises(rel.ReleaseBlocked) as blocked:
            rel.release(warehouse, tmp_path / "releases", ANALYSTS, DAY)
    assert "3 values are not this recipient's pseudonyms" in str(blocked.value)
    assert "3 pseudonyms equal another recipient's" in str(blocked.value)
    # every recipient given the same key (builder and audit alike): ours, and equal to theirs
    monkeypatch.setattr(Protocol, "pseudonym_context", property(lambda self: "release-recipient:everyone"))
    audit.forget_read()  # the protocols as they now read
    request.addfinalizer(audit.forget_read)  # and as they read again after this test
    with pytest.raises(rel.ReleaseBlocked) as blocked:
        rel.release(warehouse, tmp_path / "releases", ANALYSTS, DAY)
    assert "not this recipient's" not in str(blocked.value)
    assert "3 pseudonyms equal another recipient's" in str(blocked.value)
    assert not any((tmp_path / "releases" / "falls-analysts").glob("*"))
