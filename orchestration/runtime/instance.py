"""The Dagster instance of a data folder: the process environment Dagster, dbt and the domain code
read, and the instance's dagster.yaml under `$DAGSTER_HOME` (by default `<data>/dagster_home`)."""

from __future__ import annotations

import os
from pathlib import Path

from orchestration.partnership.settings import Settings

_DAGSTER_YAML_V1 = """\
# Written by `partnership`: this instance keeps run history under the data folder.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 1
"""
DAGSTER_YAML = _DAGSTER_YAML_V1 + """\
# Dagster's SQLite event log, each database kept open rather than opened per event
# (orchestration/runtime/event_log.py); same files under $DAGSTER_HOME/history/runs.
event_log_storage:
  module: orchestration.runtime.event_log
  class: PartnershipEventLogStorage
"""
PREVIOUS_DAGSTER_YAML = (_DAGSTER_YAML_V1,)
"""Earlier versions written by `partnership`, replaced by the current one; a file edited by hand is left alone."""


def prepare_instance(settings: Settings) -> Path:
    """Point Dagster, dbt and the domain code at one data folder, and write the instance's
    dagster.yaml unless someone edited it. Returns `$DAGSTER_HOME`."""
    os.environ["PARTNERSHIP_DATA_DIR"] = str(settings.data_dir)
    os.environ["PARTNERSHIP_WAREHOUSE"] = str(settings.warehouse_path)
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Dagster then hands a run's planned materializations and asset checks to the event log as one
    # batch, which event_log.py stores in one transaction per database.
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "10000")
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in PREVIOUS_DAGSTER_YAML:
        tmp = config.with_name(config.name + ".tmp")
        tmp.write_text(DAGSTER_YAML)
        tmp.replace(config)
    return home
