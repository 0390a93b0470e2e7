"""The nightly job and its schedule: the same job `partnership run` executes."""

from __future__ import annotations

import dagster as dg

nightly_job = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    description="A whole night: register and validate deliveries, build the dbt project, publish releases.",
    # One process, steps in order: never a second writer on the DuckDB file.
    executor_def=dg.in_process_executor,
)

nightly_schedule = dg.ScheduleDefinition(
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
