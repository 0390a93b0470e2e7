"""The dbt project, defined once. Outside `dagster dev` the manifest must already exist:
`partnership run` and the tests build it with `dbt parse` first."""

from __future__ import annotations

from dagster_dbt import DbtProject

from orchestration.partnership.settings import PROJECT_ROOT

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

partnership_dbt = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
partnership_dbt.prepare_if_dev()
