"""Every dbt model, seed and test, built with one `dbt build` a night."""

import os
import shutil
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration.defs.catalogue import contracts
from orchestration.defs.dbt.project import partnership_dbt
from orchestration.defs.dbt.translator import PartnershipTranslator
from orchestration.defs.ingestion.assets import POOL
from orchestration.partnership.dbt_runner import dbt_env, dbt_executable, stage_place_seeds
from orchestration.partnership.night import blocking_rejections
from orchestration.partnership.settings import get_settings
from orchestration.partnership.warehouse import writer_lock


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
    # dbt writes the warehouse from its own process: it does so holding this launch's writer lock.
    with writer_lock(settings.warehouse_path, purpose=f"dbt build, run {context.run_id}"):
        # A failing test fails this step, so nothing downstream of it (releases) runs.
        yield from dbt.cli(args, context=context).stream()
        # The documentation site of what was just built, where the CLI summary points.
        docs = dbt.cli(["docs", "generate", "--static"], manifest=partnership_dbt.manifest_path, raise_on_error=False)
        docs.wait()
    if docs.is_successful():
        publish_dbt_docs(docs.target_path, settings.reports_dir / "dbt_docs")
    else:
        context.log.warning("dbt docs generate failed; the documentation site keeps its last version")


def publish_dbt_docs(target_path: Path, dest: Path) -> None:
    """Copy the generated docs site (static page plus the artefacts the page reads) into
    `dest`, replacing the previous site in one rename."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("index.html", "manifest.json", "catalog.json"):
        shutil.copyfile(target_path / name, tmp / name)
    shutil.copyfile(target_path / "static_index.html", tmp / "static_index.html")
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


dbt_resource = DbtCliResource(project_dir=partnership_dbt, dbt_executable=dbt_executable())
