"""Every dbt model, seed and test, built with one `dbt build` a night."""

import os

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.defs.catalogue import contracts
from orchestration.defs.dbt.project import partnership_dbt
from orchestration.defs.dbt.translator import PartnershipTranslator
from orchestration.defs.ingestion.assets import POOL
from orchestration.partnership.dbt_runner import dbt_env, dbt_executable, stage_place_seeds
from orchestration.partnership.night import blocking_rejections
from orchestration.partnership.settings import get_settings


@dbt_assets(manifest=partnership_dbt.manifest_path, project=partnership_dbt,
            dagster_dbt_translator=PartnershipTranslator(), pool=POOL)
def partnership_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    settings = get_settings()
    os.environ.update(dbt_env(settings))
    stage_place_seeds(settings)
    args = ["build"]
    held = sorted(c.id for c in contracts().values() if blocking_rejections(settings, c.id))
    if held:
        # Everything downstream of an extract whose latest delivery stands rejected keeps its
        # last good state, until an accepted delivery follows.
        context.log.warning(f"held back downstream of rejected deliveries: {', '.join(held)}")
        args += ["--exclude", *(f"source:valid.{cid}+" for cid in held)]
    # A failing test fails this step, so nothing downstream of it (releases) runs.
    yield from dbt.cli(args, context=context).stream()


dbt_resource = DbtCliResource(project_dir=partnership_dbt, dbt_executable=dbt_executable())
