"""The Dagster UI (`dagster dev`) on a data folder: what `partnership dev` starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestration.partnership.dbt.runner import dbt_parse
from orchestration.partnership.settings import Settings
from orchestration.runtime.instance import prepare_instance


def serve_ui(settings: Settings) -> int:
    """Run `dagster dev` on the project's workspace until it is stopped; returns its exit code."""
    prepare_instance(settings)
    dbt_parse(settings)
    dagster = Path(sys.executable).with_name("dagster")
    # `dagster dev` re-parses the dbt project with the `dbt` on PATH: the one beside this Python.
    os.environ["PATH"] = os.pathsep.join([str(dagster.parent), os.environ.get("PATH", "")])
    return subprocess.call([str(dagster), "dev", "-w", str(settings.project_root / "workspace.yaml")],
                           cwd=settings.project_root)
