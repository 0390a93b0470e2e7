"""A throw-away dbt project over the real statistics macros and reference seeds, for tests that
need the macros rendered (their PHE test vectors) or the warehouse's statistics functions (the
release engine's derived figures) without building the whole project."""

from __future__ import annotations

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
    (macros/statistics/functions.sql), compiled in a throw-away project under `tmp`."""
    import os

    project = statistics_project(tmp)
    env = {"PARTNERSHIP_WAREHOUSE": str(tmp / "compile.duckdb"), "PARTNERSHIP_REFERENCE_DIR": str(tmp),
           "DBT_TARGET_PATH": str(tmp / "target"), "DBT_LOG_PATH": str(tmp / "logs"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        sql = f"{{{{ statistics_functions_sql() | join('\\n{FUNCTIONS_MARKER}\\n') }}}}"
        result = invoke(project, ["compile", "--inline", sql, "--quiet"])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert result.success, result.exception
    return [s.strip() for s in result.result.results[0].node.compiled_code.split(FUNCTIONS_MARKER) if s.strip()]
