"""Release lineage from a small hand-made manifest: which extracts a model, an indicator and a
release read, and what one held extract holds back."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestration.partnership.releases.lineage import lineage
from orchestration.partnership.releases.protocols import Protocol

pytestmark = pytest.mark.dbt_free

A, B, C = "agency_a__visits", "agency_b__referrals", "agency_c__classes"


def _model(name: str, parents: list[str], code: str = "", meta: dict | None = None) -> tuple[str, dict]:
    return f"model.p.{name}", {"resource_type": "model", "name": name, "alias": name, "raw_code": code,
                               "depends_on": {"nodes": parents}, "config": {"meta": meta or {}}}


def _manifest() -> dict:
    sources = {f"source.p.valid.{c}": {"source_name": "valid", "name": c} for c in (A, B, C)}
    sources["source.p.linkage.persons"] = {"source_name": "linkage", "name": "persons"}
    nodes = dict([
        _model("stg_a", ["source.p.valid." + A]),
        _model("stg_b", ["source.p.valid." + B]),
        _model("stg_c", ["source.p.valid." + C, "source.p.linkage.persons"]),
        _model("coverage", ["model.p.stg_a", "model.p.stg_b", "model.p.stg_c"], meta={"rows_per_extract": "contract_id"}),
        _model("events", ["model.p.stg_a", "model.p.stg_b", "model.p.stg_c"]),
        _model("ind_one", ["model.p.stg_b", "model.p.coverage"], f"select 'ONE-01' as indicator_id where contract_id = '{B}'"),
        _model("ind_two", ["model.p.events", "model.p.coverage"], f"'TWO-01' ... contract_id in ('{A}', '{C}')"),
        _model("values", ["model.p.ind_one", "model.p.ind_two"]),
        _model("cohort", ["model.p.events"]),
    ])
    nodes["seed.p.codes"] = {"resource_type": "seed", "name": "codes", "config": {}}
    return {"nodes": nodes, "sources": sources}


def _protocol(pid: str, controllers: list[str], outputs: list[dict]) -> Protocol:
    return Protocol({"id": pid, "controllers": controllers, "outputs": outputs}, Path(f"{pid}.yaml"))


def _contracts() -> dict:
    return {c: SimpleNamespace(id=c, agency=c.split("__")[0]) for c in (A, B, C)}


PROTOCOLS = {
    "board-one": _protocol("board-one", ["agency_b"], [{"source": "marts.values", "row_filters": {"indicator_id": ["ONE-01"]}}]),
    "board-two": _protocol("board-two", ["agency_a", "agency_c"], [{"source": "marts.values", "row_filters": {"indicator_id": ["TWO-01"]}}]),
    "cohort": _protocol("cohort", ["agency_a", "agency_b"], [{"source": "marts.cohort"}]),
}


def test_a_model_reads_the_extracts_upstream_of_it_and_of_a_per_extract_table_only_those_it_names():
    got = lineage(_manifest(), PROTOCOLS, _contracts())
    assert got.models["stg_c"] == {C}, "a linkage source is no extract"
    assert got.models["coverage"] == {A, B, C}
    assert got.models["ind_one"] == {B}, "it names agency B's rows of the per-extract table"
    assert got.models["ind_two"] == {A, B, C}, "an ordinary table shared by all: all of them"
    assert got.models["codes"] == frozenset()


def test_an_indicator_reads_what_the_model_naming_it_reads():
    got = lineage(_manifest(), PROTOCOLS, _contracts())
    assert got.indicators == {"ONE-01": {B}, "TWO-01": {A, B, C}}


def test_a_release_reads_its_indicators_extracts_of_its_own_controllers():
    got = lineage(_manifest(), PROTOCOLS, _contracts())
    assert got.releases == {"board-one": {B}, "board-two": {A, C}, "cohort": {A, B}}


def test_one_held_extract_holds_back_only_the_releases_that_share_its_data():
    got = lineage(_manifest(), PROTOCOLS, _contracts())
    standing = {C: ["classes_20261101.parquet: late"]}
    assert got.held_back(standing) == {"board-two": {C: ["classes_20261101.parquet: late"]}}
    assert got.indicators_held_back(standing) == {"TWO-01": [C]}
    assert got.held_back({}) == {}


def test_a_release_whose_source_dbt_does_not_know_is_held_by_any_of_its_controllers_extracts():
    protocols = {"odd": _protocol("odd", ["agency_a"], [{"source": "marts.not_a_model"}])}
    assert lineage(_manifest(), protocols, _contracts()).releases == {"odd": {A}}
