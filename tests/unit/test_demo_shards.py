"""A population generated in shards (as the region preset is): one partnership, its files read
back independently of the generator's writers."""

from __future__ import annotations

import io

import polars as pl
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from orchestration.partnership.demo import PRESETS, Preset, generate
from orchestration.partnership.demo.ids import is_valid_nhs, is_valid_upn
from orchestration.partnership.demo.spec import EXTRACTS

pytestmark = pytest.mark.dbt_free

TINY = Preset("tiny-shards", residents=6_000, wards=6, lsoas=30, shards=3)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setitem(PRESETS, TINY.name, TINY)
    out = tmp_path_factory.mktemp("shards")
    return out, generate(out, preset=TINY.name)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _rows(path, spec) -> pl.DataFrame:
    """A delivered file's rows, as text, read with nothing of the generator's."""
    if spec["fmt"] == "parquet":
        return pl.from_arrow(pq.read_table(path))
    if spec["fmt"] == "xlsx":
        sheet = load_workbook(path, read_only=True).worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))[1:]  # a title line, then the header
        return pl.DataFrame([[None if v is None else str(v) for v in r] for r in rows[1:]], schema=list(rows[0]),
                            orient="row")
    text = path.read_bytes().decode(spec["encoding"]).removeprefix("\ufeff")
    return pl.read_csv(io.StringIO(text), separator=spec["sep"], infer_schema=False)


def test_every_file_holds_every_shard_once_with_the_truth_counting_its_rows(sharded):
    out, summary = sharded
    truth = out / "demo_truth"
    deliveries = pl.read_parquet(truth / "deliveries.parquet")
    records = pl.read_parquet(truth / "records.parquet")
    assert not (out / ".shard-parts").exists()
    assert deliveries.select("agency", "extract", "file_name").n_unique() == deliveries.height
    for d in deliveries.iter_rows(named=True):
        spec = EXTRACTS[(d["agency"], d["extract"])]
        got = _rows(out / "landing" / d["agency"] / d["extract"] / d["file_name"], spec)
        assert got.columns == spec["columns"]
        assert got.height == d["rows"], d["file_name"]
        mine = records.filter((pl.col("agency") == d["agency"]) & (pl.col("extract") == d["extract"])
                              & (pl.col("file_name") == d["file_name"]))
        assert sorted(mine["row_number"].to_list()) == list(range(1, d["rows"] + 1))
    # each file's rows come from every shard: people of the first and the last third
    people = pl.read_parquet(truth / "people.parquet")
    third = people.height // 3
    ae = records.filter(pl.col("extract") == "ae_attendances")["person_id"]
    assert ae.is_in(people["person_id"][:third].implode()).any() and ae.is_in(people["person_id"][-third:].implode()).any()


def test_identifiers_are_distinct_across_shards(sharded):
    out, summary = sharded
    truth = out / "demo_truth"
    people = pl.read_parquet(truth / "people.parquet")
    assert people["person_id"].n_unique() == people.height == summary["counts"]["people"]
    assert people["nhs_number"].n_unique() == people.height
    assert all(is_valid_nhs(x) for x in people["nhs_number"].to_list())
    upn = people["upn"].drop_nulls()
    assert upn.n_unique() == upn.len() and all(is_valid_upn(x) for x in upn.to_list())
    assert people["is_canary"].sum() == 5  # the canaries live once, in the first shard
    assert people["household_id"].n_unique() == summary["counts"]["households"]
    hh = pl.read_parquet(truth / "households.parquet")
    assert hh.select("household_id", "uprn").n_unique() == hh.height
    ref = out / "reference"
    wards = pl.read_csv(ref / "geography_wards.csv", infer_schema=False)
    lsoas = pl.read_csv(ref / "geography_lsoas.csv", infer_schema=False)
    postcodes = pl.read_csv(ref / "geography_postcodes.csv", infer_schema=False)
    addresses = pl.read_csv(ref / "address_lookup.csv", infer_schema=False)
    assert wards.height == TINY.wards and wards["ward_code"].n_unique() == wards.height
    assert wards["ward_name"].n_unique() == wards.height
    assert lsoas["lsoa_code"].n_unique() == lsoas.height == TINY.lsoas
    assert postcodes["postcode"].n_unique() == postcodes.height
    assert addresses["uprn"].n_unique() == addresses.height
    assert addresses["postcode"].is_in(postcodes["postcode"].implode()).all()
    assert postcodes["ward_code"].is_in(wards["ward_code"].implode()).all()
    # record ids: a history file never repeats one across shards (planted duplicates aside)
    records = pl.read_parquet(truth / "records.parquet")
    hist = records.filter(pl.col("file_name").str.contains("_history_"))
    assert hist.select("agency", "extract", "true_record_id").n_unique() == hist.height
    # residence and people agree on who exists and where they lived
    residence = pl.read_parquet(truth / "residence.parquet")
    assert residence["person_id"].is_in(people["person_id"].implode()).all()
    assert residence["ward_code"].drop_nulls().is_in(wards["ward_code"].implode()).all()


def test_a_late_part_of_a_large_population_still_has_valid_postcodes():
    """The fifth county of a region: ward codes numbered on, postcodes in its own area."""
    import re

    import numpy as np

    from orchestration.partnership.demo.presets import Shard
    from orchestration.partnership.demo.world import build_geography

    part = Preset("part", residents=1_000, wards=96, lsoas=300)
    wards, lsoas, postcodes, addresses = build_geography(
        np.random.default_rng(1), part, 2_000, Shard(index=4, count=5, ward_offset=384, lsoa_offset=2_500))
    assert wards["ward_code"].to_list() == [f"E059{i:05d}" for i in range(385, 481)]
    assert lsoas["lsoa_code"][0] == "E01902501"
    uk = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$")  # the contracts' pattern, in its canonical form
    assert all(uk.match(p) for p in postcodes["postcode"].to_list())
    assert postcodes["postcode"].n_unique() == postcodes.height
