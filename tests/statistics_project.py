"""A throw-away dbt project over the real statistics macros and reference seeds, for tests that
need the macros rendered (their PHE test vectors) or the warehouse's statistics functions (the
release engine's derived figures) without building the whole project."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT = REPO_ROOT / "dbt_project"


def statistics_project(root: Path) -> Path:
    """A dbt project that is the real one minus its models: the real
    dbt_project.yml settings and profiles.yml, and *symlinks* to the real
    macros/ and seeds/reference/ (so the macros and seeds under test are the
    committed files themselves). Models are left out so that work in progress
    elsewhere in the project (e.g. a model needing a data-folder seed) cannot
    stop these checks from parsing."""
    project = root / "dbt_project"
    (project / "seeds").mkdir(parents=True)
    (project / "models").mkdir()
    (project / "tests").mkdir()
    (project / "macros").symlink_to(DBT_PROJECT / "macros", target_is_directory=True)
    (project / "seeds" / "reference").symlink_to(DBT_PROJECT / "seeds" / "reference", target_is_directory=True)
    config = yaml.safe_load((DBT_PROJECT / "dbt_project.yml").read_text())
    config["model-paths"] = ["models"]
    config["test-paths"] = ["tests"]
    config["macro-paths"] = ["macros"]
    # dbt walks a seed path given as a symlink, not symlinks below it
    config["seed-paths"] = ["seeds/reference"]
    config.pop("models", None)
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(DBT_PROJECT / "profiles.yml", project / "profiles.yml")
    return project


def invoke(project: Path, args: list[str], messages: list[str] | None = None):
    """Run dbt in-process (one interpreter start for all invocations)."""
    from dbt.cli.main import dbtRunner

    callbacks = [] if messages is None else [lambda event: messages.append(event.info.msg)]
    common = ["--profiles-dir", str(project), "--project-dir", str(project)]
    return dbtRunner(callbacks=callbacks).invoke([*args, *common])


FUNCTIONS_MARKER = "-- @@statement"


def compile_statistics_functions(tmp: Path) -> list[str]:
    """The statements that create the warehouse's statistics functions, as dbt renders them
    (macros/statistics/functions.sql), compiled in a throw-away project under `tmp` by a dbt
    process of its own (its own target and log folders: nothing of the checkout's dbt project is
    written, so it may run beside a night)."""
    import subprocess
    import sys

    project = statistics_project(tmp)
    env = {**os.environ, "PARTNERSHIP_WAREHOUSE": str(tmp / "compile.duckdb"), "PARTNERSHIP_REFERENCE_DIR": str(tmp),
           "DBT_TARGET_PATH": str(tmp / "target"), "DBT_LOG_PATH": str(tmp / "logs"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    sql = f"{{{{ statistics_functions_sql() | join('\\n{FUNCTIONS_MARKER}\\n') }}}}"
    dbt = str(Path(sys.executable).with_name("dbt"))
    proc = subprocess.run([dbt, "compile", "--inline", sql, "--quiet", "--profiles-dir", str(project),
                           "--project-dir", str(project)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [s.strip() for s in proc.stdout.split(FUNCTIONS_MARKER) if s.strip()]
