"""Release lineage on the project's own dbt manifest and protocols: one agency's held extract
holds back only the releases sharing its data, though every indicator shares one mart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.releases.lineage import lineage
from orchestration.partnership.releases.protocols import load_protocols
from tests.conftest import DEMO_AS_OF, use_data_dir

AGEWELL = "riverside_agewell__falls_class_referrals"
CHILDREN = "county_council__children_social_care_referrals"
CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "agencies"
PROTOCOLS = Path(__file__).resolve().parents[2] / "contracts" / "protocols"


@pytest.fixture(scope="module")
def project_lineage(tmp_path_factory, saved_environment):
    from orchestration.partnership.dbt.runner import dbt_parse
    from orchestration.partnership.demo import generate

    data_dir = tmp_path_factory.mktemp("lineage")
    settings = use_data_dir(data_dir)
    generate(data_dir, preset="small", seed=42, as_of=DEMO_AS_OF)
    dbt_parse(settings)
    manifest = json.loads((settings.dbt_project_dir / "target" / "manifest.json").read_text())
    return lineage(manifest, load_protocols(settings.protocols_dir), load_contracts(settings.contracts_dir))


def test_age_well_held_back_holds_the_falls_releases_and_neither_safeguarding_nor_supporting_families(project_lineage):
    held = project_lineage.held_back({AGEWELL: ["falls_class_referrals_20261101.parquet: arrived late"]})
    assert sorted(held) == ["falls-analysts", "falls-board"]
    assert held["falls-board"] == {AGEWELL: ["falls_class_referrals_20261101.parquet: arrived late"]}
    assert "FALLS-03" in project_lineage.indicators_held_back({AGEWELL: ["late"]})
    assert not {"MASH-01", "MASH-02", "FALLS-01", "FALLS-04"} & set(project_lineage.indicators_held_back({AGEWELL: ["late"]}))


def test_the_safeguarding_indicators_read_the_childrens_referrals_alone(project_lineage):
    # Their models read the children's referrals, and of the coverage table only its row for them.
    assert project_lineage.indicators["MASH-01"] == {CHILDREN}
    assert project_lineage.indicators["MASH-02"] == {CHILDREN}
    assert project_lineage.releases["safeguarding-board"] == {CHILDREN}


def test_every_release_reads_only_extracts_of_its_controllers_and_every_extract_is_read_by_some_release(project_lineage):
    contracts, protocols = load_contracts(CONTRACTS), load_protocols(PROTOCOLS)
    for pid, extracts in project_lineage.releases.items():
        assert extracts, pid
        assert {contracts[c].agency for c in extracts} <= set(protocols[pid].doc["controllers"]), pid
    read = set().union(*project_lineage.releases.values())
    assert read >= set(contracts) - {"nhs_optout__opt_outs"}, "the opt-outs feed linkage, not a release's models"
