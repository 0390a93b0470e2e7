"""The nightly job run in this process, on the data folder's persistent Dagster instance: how
`partnership run` (and the tests' and benchmarks' nights) launch a night.

dbt's and Dagster's own output goes to a log file under <data>/logs/; whoever launched the night
hears what it is doing through a `NightProgress`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ContextManager, Protocol

import dagster as dg
from dagster._core.utils import make_new_run_id

from orchestration.partnership.dbt.runner import dbt_parse
from orchestration.partnership.settings import Settings
from orchestration.runtime.instance import prepare_instance


class NightProgress(Protocol):
    """What a night tells whoever launched it: its stages (registering, each extract, linkage, the
    dbt build with its nodes done, each release, each board pack) as they start."""

    def waiting(self, holder: str) -> None:
        """The warehouse is in use by `holder`; the night waits for it."""

    def night(self) -> ContextManager[Any]:
        """The whole night, for as long as it lasts (a display is shown within it)."""

    def stage(self, label: str) -> None:
        """A stage of the night began (the one before it ended)."""

    def advance(self, done: int, total: int) -> None:
        """`done` of the current stage's `total` parts are done (the dbt build's nodes)."""


class Silent:
    """A `NightProgress` that says nothing."""

    def waiting(self, holder: str) -> None:
        pass

    def night(self) -> ContextManager[Any]:
        return contextlib.nullcontext()

    def stage(self, label: str) -> None:
        pass

    def advance(self, done: int, total: int) -> None:
        pass


@dataclass
class NightRun:
    """A night's outcome. Dagster's own result is `dagster_result`; its attributes (the run's
    events, for tests and benchmarks) are reachable through this object too."""

    dagster_result: dg.ExecuteInProcessResult
    log_path: Path
    started_at: datetime  # UTC, naive, to the second: what the night logged is logged at or after it

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
    from orchestration.partnership.ops.rundate import check_run_date
    from orchestration.partnership.settings import run_date
    from orchestration.partnership.warehouse.connection import LINKAGE_MEMORY_LIMIT_ENV, memory_limit, writer_lock
    from orchestration.partnership.warehouse.permissions import require_private
    from orchestration.partnership.warehouse.pseudonymise import load_key

    progress = progress or Silent()
    require_private(settings.data_dir)  # before Dagster's home or anything else is written there
    load_key()  # fail before anything runs, with a clear message, if there is no key
    memory_limit()  # or a memory limit DuckDB would refuse
    memory_limit(LINKAGE_MEMORY_LIMIT_ENV)
    prepare_instance(settings)
    # One launch writes at a time (docs/operations.md): a second waits, then fails naming the first.
    with writer_lock(settings.warehouse_path, purpose="partnership run", on_wait=progress.waiting), progress.night():
        # Under the lock: the deliveries it compares with are settled, and a second launch waits first.
        check_run_date(settings.warehouse_path, run_date())  # a back-dated night would date releases before their data
        night = _run_locked(settings, progress)
        _refresh_portal_snapshot(settings, night)
        return night


def _refresh_portal_snapshot(settings: Settings, night: NightRun) -> None:
    """The portal's read-only copy of `ops` (partnership/ops/snapshot.py), written while the lock
    is still held: `execute_in_process` runs without the run executor that does it for launched runs."""
    from orchestration.partnership.ops.snapshot import refresh_ops_snapshot

    problem = refresh_ops_snapshot(settings)
    if problem:
        with open(night.log_path, "a") as log:
            log.write(problem + "\n")


def _run_locked(settings: Settings, progress: NightProgress) -> NightRun:
    from orchestration.partnership.validation.batch import start_worker, stop_worker

    start_worker()  # imports Great Expectations on the other core while dbt parses and Dagster loads
    try:
        return _run_with_worker(settings, progress)
    finally:
        stop_worker()


def _run_with_worker(settings: Settings, progress: NightProgress) -> NightRun:
    progress.stage("building the dbt manifest")
    dbt_parse(settings)
    progress.stage("loading the code location")
    from orchestration.definitions import defs
    from orchestration.defs.dbt.assets import partnership_dbt_models
    from orchestration.defs.jobs import reclaim_from_dead_runs
    from orchestration.partnership.catalogue import contracts, protocols

    job = defs.resolve_job_def("nightly")
    instance = dg.DagsterInstance.get()
    reclaim_from_dead_runs(instance)  # a killed night must not keep the warehouse pool's slot (we hold the lock)
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"night-{datetime.now().strftime('%Y%m%d-%H%M%S')}.log"
    started_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    # Line-buffered: an operator tailing the log sees a running night, not an empty file.
    stages = StageTracker(progress, extracts=len(contracts()), dbt_nodes=len(partnership_dbt_models.keys),
                          protocol_ids=protocols())
    run_id = make_new_run_id()
    instance.add_event_listener(run_id, _listener(stages))
    with open(log_path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config, run_id=run_id)
    return NightRun(result, log_path, started_at)


DBT_STEP = "partnership_dbt_models"


class StageTracker:
    """Turns the run's step starts and the dbt step's materializations into the stages a
    `NightProgress` hears: step keys name assets (`ops__deliveries`, `valid__<extract>`, ...)."""

    def __init__(self, progress: NightProgress, extracts: int, dbt_nodes: int, protocol_ids=()):
        self.progress, self.extracts, self.dbt_nodes = progress, extracts, dbt_nodes
        # Step keys spell a protocol id's hyphens as underscores; people know the id.
        self.protocols = {pid.replace("-", "_"): pid for pid in protocol_ids}
        self.extracts_started = 0
        self.dbt_done = 0

    def step_started(self, step_key: str) -> None:
        if step_key == "ops__deliveries":
            label = "registering deliveries"
        elif step_key.startswith("valid__"):
            self.extracts_started += 1
            label = f"extract {self.extracts_started} of {self.extracts}: {step_key.removeprefix('valid__')}"
        elif step_key == "linkage_person_index":
            label = "linkage"
        elif step_key == DBT_STEP:
            label = f"dbt build ({self.dbt_nodes} nodes)"
        elif step_key.startswith("releases__"):
            label = f"release {self._protocol(step_key.removeprefix('releases__'))}"
        elif step_key.startswith("board_packs__"):
            label = f"board pack {self._protocol(step_key.removeprefix('board_packs__'))}"
        else:
            label = step_key.replace("__", " ").replace("_", " ")
        self.progress.stage(label)
        if step_key == DBT_STEP:
            self.progress.advance(0, self.dbt_nodes)

    def _protocol(self, key: str) -> str:
        return self.protocols.get(key, key)

    def materialized(self, step_key: str) -> None:
        if step_key == DBT_STEP:
            self.dbt_done += 1
            self.progress.advance(min(self.dbt_done, self.dbt_nodes), self.dbt_nodes)


def _listener(stages: StageTracker):
    """An instance event listener telling `stages` of each step the run starts and each asset it
    materializes, from Dagster's own events."""

    def on_event(entry) -> None:
        event = entry.dagster_event
        if event is None or not event.step_key:
            return
        if event.event_type_value == "STEP_START":
            stages.step_started(event.step_key)
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            stages.materialized(event.step_key)

    return on_event
