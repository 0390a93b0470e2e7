"""The dbt project, defined once. Outside `dagster dev` the manifest must already exist:
`partnership run` and the tests build it with `dbt parse` first."""

from __future__ import annotations

import os

from dagster_dbt import DbtProject

from orchestration.partnership.settings import PROJECT_ROOT, get_settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

# dbt's profile reads the warehouse's path from the environment: `partnership` sets it; under a
# plain `dagster dev -w workspace.yaml` it is the data folder's (PARTNERSHIP_DATA_DIR, else data/).
os.environ.setdefault("PARTNERSHIP_WAREHOUSE", str(get_settings().warehouse_path))

partnership_dbt = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
partnership_dbt.prepare_if_dev()
