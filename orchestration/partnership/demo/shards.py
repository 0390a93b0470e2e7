"""A sharded population's reference data and truth: each part writes its own beside the landing
folder; `merge_parts` joins them into the one `reference/` and `demo_truth/` a whole preset has,
a file at a time, streaming (never the whole region's rows in memory at once)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

SHARD_PARTS = ".shard-parts"  # under the data folder while the parts are generated; removed after

# Counts of a part's truth that add up over the parts (the others are recomputed or shared).
_SUMMED = ("people", "residents_at_as_of", "households", "addresses", "wards", "lsoas", "postcodes", "records",
           "records_with_violations", "events", "falls_phof_admissions")


def merge_parts(data_dir: Path, parts: list[Path], summary: dict) -> dict:
    """Join the parts' reference CSVs and truth files into `data_dir`; remove the parts. Returns
    the manifest's counts."""
    ref, truth = data_dir / "reference", data_dir / "demo_truth"
    ref.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    for name in sorted(p.name for p in (parts[0] / "reference").iterdir()):
        _concat_csv([p / "reference" / name for p in parts], ref / name)
    for name in ("people", "residence", "households", "records", "events"):
        _concat_parquet([p / "demo_truth" / f"{name}.parquet" for p in parts], truth / f"{name}.parquet")
    deliveries = pl.concat([pl.read_parquet(p / "demo_truth" / "deliveries.parquet") for p in parts])
    first = deliveries.group_by(["agency", "extract", "file_name"], maintain_order=True).agg(
        pl.exclude("rows").first(), pl.col("rows").sum())
    pq.write_table(first.select(deliveries.columns).to_arrow().replace_schema_metadata(None),
                   truth / "deliveries.parquet", compression="zstd")
    shutil.copyfile(parts[0] / "demo_truth" / "canaries.json", truth / "canaries.json")
    manifests = [json.loads((p / "demo_truth" / "manifest.json").read_text(encoding="utf-8")) for p in parts]
    manifest = manifests[0]
    counts = manifest["counts"]
    for k in _SUMMED:
        counts[k] = sum(m["counts"][k] for m in manifests)
    counts["rows_per_extract"] = summary["rows"]
    landing = [f for f in dict.fromkeys(summary["files"]) if not f.startswith(str(data_dir / SHARD_PARTS))]
    references = [str(p) for p in sorted(ref.iterdir())]
    counts["files"] = len(landing) + len(references)
    manifest["shards"] = len(parts)
    (truth / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    summary["files"] = landing + references + [str(p) for p in sorted(truth.iterdir())]
    shutil.rmtree(data_dir / SHARD_PARTS)
    return counts


def _concat_csv(sources: list[Path], target: Path) -> None:
    """The first file whole, then every other's rows without its header line."""
    with open(target, "wb") as out:
        for i, src in enumerate(sources):
            with open(src, "rb") as f:
                if i:
                    f.readline()
                shutil.copyfileobj(f, out, 1 << 20)


def _concat_parquet(sources: list[Path], target: Path) -> None:
    """Row groups of every part in order, under one schema (a column all null in one part takes
    the type the others give it)."""
    schema = pa.unify_schemas([pq.read_schema(s) for s in sources], promote_options="permissive")
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        for src in sources:
            f = pq.ParquetFile(src)
            for g in range(f.num_row_groups):
                writer.write_table(f.read_row_group(g).cast(schema))
