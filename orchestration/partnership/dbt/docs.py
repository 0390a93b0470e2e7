"""The dbt documentation site under reports/dbt_docs: whether it still describes the project and
the warehouse, and publishing a newly generated one in a single rename."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import connect


def docs_site(settings: Settings) -> Path:
    """Where the night publishes the site (the CLI's summary points there)."""
    return settings.reports_dir / "dbt_docs"


DOCS_MARKER = "partnership_docs_inputs.txt"
"""In the published docs site: the fingerprint of what the site describes."""


def docs_fingerprint(settings: Settings, manifest: dict, project: str) -> str:
    """What `dbt docs generate` documents: the project (its manifest) and the columns and types
    of every relation the manifest names, as the warehouse has them now (the catalog)."""
    schemas = sorted({n["schema"].lower() for n in manifest["nodes"].values() if n.get("schema")}
                     | {s["schema"].lower() for s in manifest["sources"].values()})
    with connect(settings.warehouse_path, read_only=True) as con:
        cols = con.execute(
            f"""select table_schema, table_name, column_name, data_type, ordinal_position
                from information_schema.columns where lower(table_schema) in ({",".join("?" for _ in schemas)})
                order by all""", schemas).fetchall()
    return hashlib.sha256(json.dumps([project, [list(map(str, c)) for c in cols]]).encode()).hexdigest()


def docs_are_current(site: Path, fingerprint: str) -> bool:
    try:
        return (site / DOCS_MARKER).read_text().strip() == fingerprint and (site / "index.html").is_file()
    except OSError:
        return False


def publish_dbt_docs(target_path: Path, dest: Path, fingerprint: str | None = None) -> None:
    """Copy the generated docs site (static page plus the artefacts the page reads) into
    `dest`, replacing the previous site in one rename; `fingerprint` is what it describes."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("index.html", "manifest.json", "catalog.json"):
        shutil.copyfile(target_path / name, tmp / name)
    shutil.copyfile(target_path / "static_index.html", tmp / "static_index.html")
    if fingerprint:
        (tmp / DOCS_MARKER).write_text(fingerprint + "\n")
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
