"""The manifest does not depend on where the warehouse file is, only on its name.

`dbt_parse` reuses target/manifest.json for a data folder elsewhere when the warehouse file has
the same name (`project_fingerprint` holds the file's stem, not its path). This parses the real
project twice, for two warehouses in different folders, and requires the same manifest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from orchestration.partnership.dbt.runner import dbt_executable


def _strip(value):
    # Parse times differ between two parses of the same project; nothing else may.
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items()
                if k not in ("created_at", "generated_at", "invocation_id", "invocation_started_at", "run_started_at")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def test_two_warehouse_folders_with_the_same_file_name_give_the_same_manifest(demo_night, tmp_path):
    settings, _ = demo_night
    project = tmp_path / "dbt_project"
    shutil.copytree(settings.dbt_project_dir, project, ignore=shutil.ignore_patterns("target", "logs", ".*"))
    manifests = []
    for folder in ("one", "elsewhere/two"):
        env = {**os.environ, "PARTNERSHIP_WAREHOUSE": str(tmp_path / folder / "warehouse.duckdb")}
        target = tmp_path / f"target-{folder.replace('/', '-')}"
        proc = subprocess.run([dbt_executable(), "parse", "--quiet", "--no-partial-parse", "--project-dir", str(project),
                               "--profiles-dir", str(project), "--target-path", str(target)],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        manifests.append(json.loads((target / "manifest.json").read_text()))
    one, two = (_strip(m) for m in manifests)
    assert one["nodes"] and one == two
    # What it does hold of the path: the database name, the file's stem (so the stem is in the fingerprint).
    assert {n["database"] for n in one["nodes"].values() if n.get("database")} == {"warehouse"}
    assert not {str(tmp_path / f) for f in ("one", "elsewhere")} & set(json.dumps(manifests[0]).split('"'))
    assert str(tmp_path / "one") not in json.dumps(manifests[0])
