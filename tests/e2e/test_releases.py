"""The real releases of one demo night: exactly the allowed columns, no canary anywhere, the
expired protocol produces nothing, the release log verifies, analysts query one release only."""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from orchestration.partnership.cli import main
from orchestration.partnership.releases.protocols import load_protocols
from tests.conftest import DEMO_RUN_DATE, use_data_dir

pytestmark = pytest.mark.dbt_free


def _protocols(settings):
    return load_protocols(settings.protocols_dir)


def test_each_published_release_holds_exactly_its_protocols_columns(demo_night):
    settings, _ = demo_night
    published = 0
    for pid, p in _protocols(settings).items():
        folder = settings.releases_dir / pid / DEMO_RUN_DATE.isoformat()
        if not folder.exists():
            continue
        published += 1
        for out in p.outputs:
            df = pl.read_parquet(folder / "parquet" / f"{out['table']}.parquet")
            extra = [c for c in df.columns if c not in out["columns"]]
            assert [c for c in df.columns if c in out["columns"]] == out["columns"]
            if p.level == "aggregate":
                assert all(c.endswith(("_suppressed", "_rounding_base")) or c == "derived_withheld" for c in extra)
            else:
                assert extra == []
    assert published >= 3  # falls-board, safeguarding-board, falls-analysts


def test_no_canary_identifier_appears_in_any_release_file(demo_night):
    settings, _ = demo_night
    canaries = json.loads((settings.truth_dir / "canaries.json").read_text(encoding="utf-8"))
    needles = set()
    for c in canaries:
        needles |= {c["nhs_number"], c["surname"], f"{c['forename']} {c['surname']}"}
        needles |= {c["nhs_number"][:3] + " " + c["nhs_number"][3:6] + " " + c["nhs_number"][6:]}
    files = [f for f in settings.releases_dir.rglob("*") if f.is_file()]
    assert files
    for f in files:
        data = f.read_bytes()
        for n in needles:
            for form in {n, n.lower(), n.upper()}:
                assert form.encode() not in data, f"a canary identifier is in {f.name}"
    # and in the decoded values, whatever the file's encoding
    lowered = {n.lower() for n in needles}
    for pq in settings.releases_dir.rglob("*.parquet"):
        df = pl.read_parquet(pq)
        for col, dt in df.schema.items():
            if dt == pl.Utf8:
                assert not {v.lower() for v in df[col].drop_nulls()} & lowered
    for db in settings.releases_dir.rglob("*.duckdb"):
        with duckdb.connect(str(db), read_only=True) as con:
            for (t,) in con.execute("select table_name from information_schema.tables").fetchall():
                for row in con.execute(f'select * from "{t}"').fetchall():
                    assert not {str(v).lower() for v in row} & lowered


def test_the_canaries_did_reach_the_falls_pathway_so_the_scan_means_something(demo_night):
    settings, _ = demo_night
    folder = settings.releases_dir / "falls-analysts" / DEMO_RUN_DATE.isoformat()
    assert folder.exists()
    df = pl.read_parquet(folder / "parquet" / "falls_pathway_events.parquet")
    assert df.height > 100 and df["person_ref"].str.len_chars().unique().to_list() == [64]


def test_the_expired_protocol_produced_nothing_and_the_log_and_report_say_why(demo_night):
    settings, _ = demo_night
    assert not (settings.releases_dir / "asb-hotspots-2025").exists()
    report = json.loads((settings.reports_dir / "releases" / f"{DEMO_RUN_DATE}.json").read_text())
    assert report["protocols"]["asb-hotspots-2025"]["status"] == "not_in_force"
    assert "expired on 2026-03-31" in report["protocols"]["asb-hotspots-2025"]["reason"]


def test_the_release_log_verifies_and_analysts_can_query_only_their_release(demo_night, capsys):
    settings, _ = demo_night
    use_data_dir(settings.data_dir)  # the CLI reads the environment, which an earlier test may have pointed elsewhere
    assert main(["audit", "verify"]) == 0
    assert main(["releases"]) == 0
    assert main(["query", "--protocol", "falls-analysts", "--csv", "select count(*) as n from falls_pathway_events"]) == 0
    assert int(capsys.readouterr().out.strip().splitlines()[-1]) > 0
    assert main(["query", "--protocol", "falls-analysts", f"attach '{settings.warehouse_path}' as w"]) == 2
    assert main(["query", "--protocol", "falls-analysts", "select * from read_csv('/etc/passwd')"]) == 2


def test_the_supporting_families_release_names_only_members_of_families_meeting_the_criteria(demo_night):
    import duckdb
    import polars as pl

    settings, _ = demo_night
    protocol = _protocols(settings)["supporting-families"]
    folder = settings.releases_dir / "supporting-families" / "2026-11-28"
    members = pl.read_parquet(folder / "parquet" / "family_members.parquet")
    assert members.height > 0
    assert members.columns == protocol.outputs[0]["columns"]
    assert (members["criteria_met"] >= 2).all()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        # the cohort's members but those no identity source places at the address (listed for review)
        cohort = con.execute(
            "select count(distinct person_id), count(distinct household_id) from marts.fct_supporting_families_cohort "
            "where meets_programme_criteria and person_id not in (select person_id from identity.release_member_review "
            "where protocol_id = 'supporting-families')").fetchall()[0]
    assert members["person_ref"].n_unique() == cohort[0]
    assert members["family_ref"].n_unique() == cohort[1]


def test_each_released_table_links_to_its_model_s_documentation_shipped_with_the_release_and_no_other(demo_night):
    import re

    settings, _ = demo_night
    manifest = json.loads((settings.project_root / "dbt_project" / "target" / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")}
    published = [p for p in _protocols(settings).values() if (settings.releases_dir / p.id / DEMO_RUN_DATE.isoformat()).is_dir()]
    assert published
    for protocol in published:
        folder = settings.releases_dir / protocol.id / DEMO_RUN_DATE.isoformat()
        sources = {o["source"].split(".", 1)[1] for o in protocol.outputs}
        assert {p.name for p in (folder / "model_docs").iterdir()} == {f"{s}.md" for s in sources}
        dictionary = (folder / "data_dictionary.md").read_text()
        links = set(re.findall(r"\]\((model_docs/[^)]+)\)", dictionary))
        assert links == {f"model_docs/{s}.md" for s in sources} and all((folder / link).is_file() for link in links)
        files = json.loads((folder / "manifest.json").read_text())["files"]
        for s in sources:
            doc = (folder / "model_docs" / f"{s}.md").read_text()
            assert " ".join(models[s]["description"].split()) in doc, "the model's own description, from dbt"
            assert f"model_docs/{s}.md" in files, "listed and hashed in the manifest"
            others = [m for m in models if m not in sources and models[m]["description"]
                      and " ".join(models[m]["description"].split()) in doc]
            assert not others, f"{protocol.id}: {s}'s documentation holds other models' docs: {others}"
