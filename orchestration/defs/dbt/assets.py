"""Every dbt model, seed and test, built with one `dbt build` a night: all of it when the
project changed, else only what is downstream of sources whose data changed."""

import json
import logging
import os
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets
from packaging.version import Version

from orchestration.defs.dbt.project import partnership_dbt
from orchestration.defs.dbt.translator import PartnershipTranslator
from orchestration.defs.ingestion.assets import POOL
from orchestration.partnership.catalogue import contracts
from orchestration.partnership.dbt.docs import (
    docs_are_current,
    docs_fingerprint,
    docs_site,
    publish_dbt_docs,
)
from orchestration.partnership.dbt.runner import (
    dbt_env,
    dbt_executable,
    keep_parse_state,
    plan_build,
    project_fingerprint,
    prune_invocation_dirs,
    record_build,
    stage_place_seeds,
    topological,
)
from orchestration.partnership.ingest.holdback import held_extracts
from orchestration.partnership.settings import get_settings
from orchestration.partnership.warehouse.connection import writer_lock


class _SourceTestObservations(logging.Filter):
    """dbt's tests of sources are observations by design (translator.py); dagster-dbt warns of each
    one at every build, a hundred lines a night that say nothing: those warnings are dropped."""

    PREFIX = "Logging an `AssetObservation` instead of an `AssetCheckResult` for dbt test `source_"

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.PREFIX)


logging.getLogger("dagster.builtin").addFilter(_SourceTestObservations())


@dbt_assets(manifest=partnership_dbt.manifest_path, project=partnership_dbt,
            dagster_dbt_translator=PartnershipTranslator(), pool=POOL)
def partnership_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    settings = get_settings()
    os.environ.update(dbt_env(settings))
    stage_place_seeds(settings)
    manifest = json.loads(Path(partnership_dbt.manifest_path).read_text())
    project = project_fingerprint(settings, with_env=False)
    held = held_extracts(settings, contracts())
    if held:
        # Their valid rows are their last accepted ones: every model builds on them, and the
        # releases that read them are held back (partnership/ingest/holdback.py).
        context.log.warning(f"extracts held back (their releases wait): {', '.join(held)}")
    # dbt writes the warehouse from its own process: it does so holding this launch's writer lock.
    with writer_lock(settings.warehouse_path, purpose=f"dbt build, run {context.run_id}"):
        prune_invocation_dirs(Path(partnership_dbt.project_dir) / "target")
        plan = plan_build(settings, manifest, project)
        context.log.info(f"dbt build: {plan.reason}")
        # The tables of unchanged nodes are the last build's, built from the same inputs by the
        # same code: they stand, and what depends on them runs. Reported first: nothing rebuilt is
        # upstream of them, and Dagster wants a multi-asset's outputs in dependency order.
        translator = PartnershipTranslator()
        for uid in topological(manifest, plan.unchanged):
            key = translator.get_asset_key(manifest["nodes"][uid])
            if key in context.selected_asset_keys:
                yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_key(key),
                                metadata={"dbt": "not rebuilt: its sources and code are unchanged since the last build"})
        if plan.full or plan.rebuild:
            # A failing test fails this step, so nothing downstream of it (releases) runs.
            build = dbt.cli(["build", *plan.build_args(manifest)], context=context)
            try:
                yield from build.stream()
            finally:  # a failed build parsed too: the night that retries it need not again
                keep_parse_state(settings, build.target_path)
        whole = set(context.selected_asset_keys) >= set(context.assets_def.node_keys_by_output_name.values())
        if whole:
            # The next night compares with what this build was built from (a build of a subset
            # did not build all of it: not recorded).
            record_build(settings, plan)
        # The documentation site of what was just built, where the CLI summary points; generated
        # again only when the project or a relation's columns changed.
        site = docs_site(settings)
        docs_key = docs_fingerprint(settings, manifest, project)
        if docs_are_current(site, docs_key):
            context.log.info("dbt docs: the project and the warehouse's columns are unchanged; the site stands")
            return
        docs = dbt.cli(["docs", "generate", "--static"], manifest=partnership_dbt.manifest_path, raise_on_error=False)
        docs.wait()
    if docs.is_successful():
        publish_dbt_docs(docs.target_path, site, docs_key)
    else:
        context.log.warning("dbt docs generate failed; the documentation site keeps its last version")


class PartnershipDbtCliResource(DbtCliResource):
    """dagster-dbt's resource without two dbt start-ups it pays in the Dagster process before each
    dbt command (docs/benchmarks.md, fixed costs): asking `dbt --version`, which also checks PyPI
    (the executable is the one installed beside this Python, so its version is this package's), and
    building a dbt adapter."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        """None: dagster-dbt builds the adapter only to fetch row counts or column metadata for the
        events, which this project does not ask for."""
        return None


DBT_GLOBAL_FLAGS = ["--log-level-file", "info"]
"""dbt's log file in each invocation's folder (target/<invocation>/dbt.log) at info, as on stdout:
dbt's default, debug, formats every SQL statement and connection event at a cost per node
(docs/benchmarks.md, fixed costs), and the SQL each node ran stays in the invocation's run/ folder."""

dbt_resource = PartnershipDbtCliResource(project_dir=partnership_dbt, dbt_executable=dbt_executable(),
                                         global_config_flags=DBT_GLOBAL_FLAGS)
