"""The dbt project, defined once. Outside `dagster dev` the manifest must already exist:
`partnership run` and the tests build it with `dbt parse` first; under `dagster dev` (`partnership
dev`, `make dev`, or `dagster dev -w workspace.yaml`) it is built here when it is not current."""

from __future__ import annotations

import os

from dagster_dbt import DbtProject
from dagster_dbt.dbt_project import using_dagster_dev

from orchestration.partnership.dbt.runner import dbt_parse
from orchestration.partnership.demo.mode import apply_demo_defaults
from orchestration.partnership.settings import PROJECT_ROOT, get_settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

# dbt's profile reads the warehouse's path from the environment: `partnership` sets it; under a
# plain `dagster dev -w workspace.yaml` it is the data folder's (PARTNERSHIP_DATA_DIR, else data/).
os.environ.setdefault("PARTNERSHIP_WAREHOUSE", str(get_settings().warehouse_path))
# In a demo folder, the demo's key and date unless set, as `partnership` does (demo/mode.py).
apply_demo_defaults(get_settings())

partnership_dbt = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
if using_dagster_dev():
    # Under `dagster dev` the manifest is made as a night makes it (`dbt parse` in its own process,
    # skipped when current), not by dagster-dbt's preparer, whose adapter handle needs the dbt-core
    # this code location hides (defs/dbt/__init__.py) and printed its failure at every start.
    dbt_parse(get_settings())
