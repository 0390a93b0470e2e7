"""Jobs and schedules: the night, the processing of one new delivery, freshness, retention.

Every job runs its steps in one process, one after another, and holds the warehouse's writer
lock for the whole run (whichever way it was launched: schedule, sensor, UI or CLI), so two
launches never write the DuckDB file at once: the second waits, then fails clearly.
"""

import dagster as dg
from dagster._core.definitions.executor_definition import (
    _core_in_process_executor_creation,
)
from dagster._core.events import DagsterEvent
from dagster._core.executor.in_process import InProcessExecutor

from orchestration.defs.freshness import freshness_checks
from orchestration.defs.ingestion.assets import DELIVERIES, POOL, extract_key
from orchestration.partnership.catalogue import contracts, protocols
from orchestration.partnership.settings import get_settings, run_date
from orchestration.partnership.warehouse.connection import writer_lock


def reclaim_from_dead_runs(instance: dg.DagsterInstance, current_run_id: str | None = None) -> list[str]:
    """Free the pool slots of runs whose process died (kill -9, power cut), and mark them failed.

    Call only while holding the warehouse writer lock: every run of this code location executes
    its steps holding that lock, so a run other than this one that holds or awaits a slot now
    cannot be running. Without this, a killed run keeps the `warehouse` slot and every later run
    waits for it for ever."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    reclaimed = []
    for run_id in sorted(storage.get_concurrency_run_ids()):
        if run_id == current_run_id:
            continue
        storage.free_concurrency_slots_for_run(run_id)
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, "the run's process ended without finishing (killed or crashed); "
                                            "its work was rolled back and the next run redoes it")
        reclaimed.append(run_id)
    return reclaimed


class _WarehouseRunExecutor(InProcessExecutor):
    def execute(self, plan_context, execution_plan):
        warehouse = get_settings().warehouse_path
        waiting: list[str] = []
        with writer_lock(warehouse, purpose=f"dagster run {plan_context.run_id} ({plan_context.job_name})",
                         on_wait=waiting.append):
            if waiting:
                yield DagsterEvent.engine_event(plan_context, f"waited for the warehouse writer lock ({waiting[0]})")
            dead = reclaim_from_dead_runs(plan_context.instance, plan_context.run_id)
            if dead:
                yield DagsterEvent.engine_event(plan_context, f"reclaimed the pool slots of dead runs: {', '.join(dead)}")
            yield from super().execute(plan_context, execution_plan)


@dg.executor(name="in_process", config_schema=dg.in_process_executor.config_schema)
def warehouse_run_executor(init_context):
    """Dagster's in-process executor, holding the warehouse writer lock for the whole run."""
    base = _core_in_process_executor_creation(init_context.executor_config)
    return _WarehouseRunExecutor(retries=base.retries, step_dependency_config=base.step_dependency_config,
                                 marker_to_close=base.marker_to_close)


nightly_job = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    description="A whole night: register and validate deliveries, build the dbt project, publish releases.",
    # One process, steps in order, the writer lock held: never a second writer on the DuckDB file.
    executor_def=warehouse_run_executor,
)

nightly_schedule = dg.ScheduleDefinition(
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def ingestion_selection() -> dg.AssetSelection:
    """Registration and every extract's validation, with their own checks; not dbt's source tests,
    which run with the night's one dbt build."""
    keys = [DELIVERIES, *(extract_key(c) for c in contracts().values())]
    own_checks = [*(dg.AssetCheckKey(extract_key(c), n) for c in contracts().values()
                    for n in ("contract_file_level", "quarantine_within_tolerance")),
                  *(k for spec in freshness_checks() for k in spec.check_keys)]
    return dg.AssetSelection.assets(*keys).without_checks() | dg.AssetSelection.checks(*own_checks)


ingest_job = dg.define_asset_job(
    "ingest",
    selection=ingestion_selection(),
    description="Register and validate new deliveries (the landing sensor runs it for one file at a time); "
                "marts and releases follow at the night.",
    executor_def=warehouse_run_executor,
)

freshness_job = dg.define_asset_job(
    "delivery_freshness",
    selection=dg.AssetSelection.checks(*(k for spec in freshness_checks() for k in spec.check_keys)),
    description="Each extract's delivery SLA from its contract: is a delivery overdue, which arrived late.",
    executor_def=warehouse_run_executor,
)

freshness_schedule = dg.ScheduleDefinition(
    job=freshness_job,
    cron_schedule="20 * * * *",  # hourly, so an overdue delivery shows within the hour of its due time
    execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


class RetentionConfig(dg.Config):
    dry_run: bool = False  # report what would be purged, purge nothing


@dg.op(pool=POOL, description="Purge deliveries and releases older than their contract's or protocol's retention.")
def purge_expired(context: dg.OpExecutionContext, config: RetentionConfig) -> dg.Output:
    from orchestration.partnership.ops.retention import purge

    summary = purge(get_settings(), contracts(), protocols(), run_date(), dry_run=config.dry_run)
    for line in summary.lines():
        context.log.info(line)
    return dg.Output(None, metadata={
        "dry_run": config.dry_run, "deliveries_purged": len(summary.deliveries), "releases_purged": len(summary.releases),
        "rows_purged": summary.rows, "files_removed": summary.files_removed,
        "leftovers_removed": len(summary.leftovers)})


@dg.job(name="retention", executor_def=warehouse_run_executor,
        description="Retention: deliveries (rows and files) past their contract's retentionDays, releases past "
                    "their protocol's retention.recipient_copy_days; each purge logged in ops.retention_log.")
def retention_job():
    purge_expired()


retention_schedule = dg.ScheduleDefinition(
    job=retention_job,
    cron_schedule="30 4 * * *",  # daily, after the night
    execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

jobs = [nightly_job, ingest_job, freshness_job, retention_job]
schedules = [nightly_schedule, freshness_schedule, retention_schedule]

__all__ = ["jobs", "schedules", "nightly_job", "ingest_job", "retention_job", "freshness_job"]
