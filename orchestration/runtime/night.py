"""The nightly job run in this process, on the data folder's persistent Dagster instance: how
`partnership run` (and the tests' and benchmarks' nights) launch a night.

dbt's and Dagster's own output goes to a log file under <data>/logs/; whoever launched the night
hears what it is doing through a `NightProgress`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ContextManager, Protocol

import dagster as dg

from orchestration.partnership.dbt.runner import dbt_parse
from orchestration.partnership.settings import Settings
from orchestration.runtime.instance import prepare_instance


class NightProgress(Protocol):
    """What a night tells whoever launched it."""

    def waiting(self, holder: str) -> None:
        """The warehouse is in use by `holder`; the night waits for it."""

    def phase(self, text: str) -> ContextManager[Any]:
        """A phase of the night (the dbt manifest, the run itself) for as long as it lasts."""

    def step(self, step_key: str) -> None:
        """The run has started the step `step_key`."""


class Silent:
    """A `NightProgress` that says nothing."""

    def waiting(self, holder: str) -> None:
        pass

    def phase(self, text: str) -> ContextManager[Any]:
        return contextlib.nullcontext()

    def step(self, step_key: str) -> None:
        pass


@dataclass
class NightRun:
    """A night's outcome. Dagster's own result is `dagster_result`; its attributes (the run's
    events, for tests and benchmarks) are reachable through this object too."""

    dagster_result: dg.ExecuteInProcessResult
    log_path: Path

    @property
    def success(self) -> bool:
        return self.dagster_result.success

    @property
    def run_id(self) -> str:
        return self.dagster_result.run_id

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(step, error message) of every step that failed, in the order they failed."""
        out = []
        for e in self.dagster_result.all_events:
            if e.event_type_value == "STEP_FAILURE":
                data = e.event_specific_data
                out.append((e.step_key, data.error.message.strip() if data and data.error else ""))
        return out

    def __getattr__(self, name: str):
        if name == "dagster_result":  # not yet set (copying): no recursion
            raise AttributeError(name)
        return getattr(self.dagster_result, name)


def run_night(settings: Settings, progress: NightProgress | None = None) -> NightRun:
    """Execute the nightly job in this process, holding the warehouse's writer lock throughout."""
    from orchestration.partnership.warehouse.connection import memory_limit, writer_lock
    from orchestration.partnership.warehouse.pseudonymise import load_key

    progress = progress or Silent()
    load_key()  # fail before anything runs, with a clear message, if there is no key
    memory_limit()  # or a memory limit DuckDB would refuse
    prepare_instance(settings)
    # One launch writes at a time (docs/operations.md): a second waits, then fails naming the first.
    with writer_lock(settings.warehouse_path, purpose="partnership run", on_wait=progress.waiting):
        return _run_locked(settings, progress)


def _run_locked(settings: Settings, progress: NightProgress) -> NightRun:
    from orchestration.partnership.validation.batch import start_worker, stop_worker

    start_worker()  # imports Great Expectations on the other core while dbt parses and Dagster loads
    try:
        return _run_with_worker(settings, progress)
    finally:
        stop_worker()


def _run_with_worker(settings: Settings, progress: NightProgress) -> NightRun:
    with progress.phase("Building the dbt manifest…"):
        dbt_parse(settings)
    from orchestration.definitions import defs
    from orchestration.defs.jobs import reclaim_from_dead_runs

    job = defs.resolve_job_def("nightly")
    instance = dg.DagsterInstance.get()
    reclaim_from_dead_runs(instance)  # a killed night must not keep the warehouse pool's slot (we hold the lock)
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"night-{datetime.now().strftime('%Y%m%d-%H%M%S')}.log"
    # Line-buffered: an operator tailing the log sees a running night, not an empty file.
    with open(log_path, "w", buffering=1) as log, progress.phase("Running the night…"), \
            _steps_reported_to(progress), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
    return NightRun(result, log_path)


@contextlib.contextmanager
def _steps_reported_to(progress: NightProgress) -> Iterator[None]:
    """Tell `progress` of each step the run starts, from Dagster's own step events."""

    class Handler(logging.Handler):
        def emit(self, record):
            meta = getattr(record, "dagster_meta", None) or {}
            step = meta.get("step_key")
            event = meta.get("dagster_event")
            if step and event is not None and getattr(event, "event_type_value", "") == "STEP_START":
                progress.step(step)

    handler = Handler(level=logging.DEBUG)
    logger = logging.getLogger("dagster")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
