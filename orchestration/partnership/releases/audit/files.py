"""The audit's checks of a release folder's files: only the expected files, each as the manifest
says (sha256), and a DuckDB file that holds the Parquet files' tables and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

import orchestration.partnership.boardpack.quality as data_quality
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.releases.signing import (
    SIGNATURE_FILE,  # the manifest's signature: hex, nothing personal
)
from orchestration.partnership.warehouse.files import sha256_file

BOARD_PACK_FILES = ("board_pack.html", "board_pack.pdf")  # added to an aggregate folder after publication
TEXT_FILES = ("manifest.json", "data_dictionary.md", data_quality.DATA_QUALITY_FILE)
# The documentation of the released tables' models: `model_docs/<model>.md`, one per output's
# source (read here on its own terms, not through the builder's module).
MODEL_DOCS = "model_docs"


def check_files(folder: Path, protocol: Protocol, problems: list[str]) -> dict | None:
    expected = {f"{protocol.id}.duckdb", "parquet", "manifest.json", SIGNATURE_FILE, "data_dictionary.md", MODEL_DOCS}
    if protocol.level == "aggregate":
        expected |= {data_quality.DATA_QUALITY_FILE, *BOARD_PACK_FILES}
    present = {p.name for p in folder.iterdir()}
    if present - expected:
        problems.append(f"unexpected files {sorted(present - expected)}")
    parquet_present = {p.name for p in (folder / "parquet").iterdir()} if (folder / "parquet").is_dir() else set()
    parquet_allowed = {f"{o['table']}.parquet" for o in protocol.outputs}
    if parquet_present - parquet_allowed:
        problems.append(f"unexpected parquet files {sorted(parquet_present - parquet_allowed)}")
    docs_present = {p.name for p in (folder / MODEL_DOCS).iterdir()} if (folder / MODEL_DOCS).is_dir() else set()
    docs_allowed = {f"{o['source'].split('.', 1)[1]}.md" for o in protocol.outputs}
    if docs_present - docs_allowed:  # only the released tables' models: never the secure zone's others
        problems.append(f"unexpected model documentation {sorted(docs_present - docs_allowed)}")
    if (folder / data_quality.DATA_QUALITY_FILE).exists():
        problems += data_quality.check(json.loads((folder / data_quality.DATA_QUALITY_FILE).read_text()), protocol.disclosure)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        problems.append("manifest.json missing or unreadable")
        return None
    if manifest.get("protocol", {}).get("id") != protocol.id or manifest["protocol"].get("version") != protocol.version:
        problems.append("manifest.json names another protocol or version")
    for rel, digest in (manifest.get("files") or {}).items():
        f = folder / rel
        if not f.is_file() or sha256_file(f) != digest:
            problems.append(f"manifest.json: {rel} is missing or its sha256 differs")
    listed = set(manifest.get("files") or {})
    for f in folder.rglob("*"):
        rel = f.relative_to(folder).as_posix()
        if f.is_file() and rel not in listed and rel not in ("manifest.json", SIGNATURE_FILE, *BOARD_PACK_FILES):
            problems.append(f"{rel} is not listed in manifest.json")
    return manifest


def check_database(folder: Path, protocol: Protocol, tables: dict[str, pl.DataFrame], problems: list[str]) -> None:
    db = folder / f"{protocol.id}.duckdb"
    if not db.exists():
        problems.append(f"{db.name} missing")
        return
    with duckdb.connect(str(db), read_only=True) as con:
        found = {(s, t) for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()}
        views = con.execute("select count(*) from duckdb_views() where not internal").fetchall()[0][0]
        allowed = {("main", o["table"]) for o in protocol.outputs}
        if found != allowed:
            problems.append(f"database tables {sorted(t for _, t in found)} differ from the protocol's {sorted(t for _, t in allowed)}")
        if views:
            problems.append(f"the database holds {views} views; a release holds tables only")
        for out in protocol.outputs:
            if ("main", out["table"]) not in found or out["table"] not in tables:
                continue
            cols = [r[0] for r in con.execute(f'describe "{out["table"]}"').fetchall()]
            n = con.execute(f'select count(*) from "{out["table"]}"').fetchall()[0][0]
            if cols != tables[out["table"]].columns or n != tables[out["table"]].height:
                problems.append(f"{db.name}: table {out['table']} differs from its Parquet file (columns or rows)")
