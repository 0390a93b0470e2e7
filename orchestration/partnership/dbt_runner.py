"""What dbt needs around it: environment, place seeds, and a manifest before Dagster loads."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

from .settings import Settings

PLACE_FILES = ("geography_wards.csv", "geography_lsoas.csv", "geography_postcodes.csv", "address_lookup.csv",
               "population_estimates.csv")


class DbtSetupError(RuntimeError):
    pass


def dbt_env(settings: Settings) -> dict[str, str]:
    """What profiles.yml reads."""
    return {"PARTNERSHIP_WAREHOUSE": str(settings.warehouse_path)}


def stage_place_seeds(settings: Settings) -> None:
    """Copy the place reference data from the data folder into dbt's seeds/place/.

    dbt writes a compiled copy of each seed beside its own path: a seed path outside the
    project would be overwritten, so the files are copied in rather than pointed at."""
    missing = [f for f in PLACE_FILES if not (settings.reference_dir / f).is_file()]
    if missing:
        raise DbtSetupError(
            f"place reference data missing in {settings.reference_dir}: {missing} "
            "(run `partnership generate` for the demo, or put the partnership's ONS files there)")
    dest = settings.dbt_project_dir / "seeds" / "place"
    dest.mkdir(parents=True, exist_ok=True)
    for name in PLACE_FILES:
        src, dst = settings.reference_dir / name, dest / name
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            tmp = dst.with_suffix(".tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)


def dbt_executable() -> str:
    """The dbt installed beside this Python, whether or not the environment is activated."""
    return str(Path(sys.executable).with_name("dbt"))


def dbt_parse(settings: Settings) -> None:
    """Build the manifest the Dagster definitions are loaded from."""
    stage_place_seeds(settings)
    project = settings.dbt_project_dir
    proc = subprocess.run(
        [dbt_executable(), "parse", "--quiet", "--project-dir", str(project), "--profiles-dir", str(project)],
        capture_output=True, text=True, env={**__import__("os").environ, **dbt_env(settings)},
    )
    if proc.returncode != 0:
        raise DbtSetupError(f"dbt parse failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
