"""Sensors: a new delivery is processed once its file has stopped growing; a failed run alerts operations.

The landing sensor keeps, in its cursor, each file's size and modification time as seen at the
last tick. A file whose size and mtime are unchanged across two ticks is stable: its sha256 is
taken and, unless ops.deliveries already holds that path with those bytes, one run of the
`ingest` job is requested for it, with run key `<path>@<sha256>`. Dagster never launches two
runs with the same run key for a sensor, and the cursor remembers what was requested, so a
file is processed once; a file changed later (new bytes) is a new delivery.
"""

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from orchestration.defs.ingestion.assets import DELIVERIES, extract_key
from orchestration.defs.jobs import ingest_job
from orchestration.partnership.catalogue import contracts
from orchestration.partnership.ingest.deliveries import scan_landing
from orchestration.partnership.ops.alerts import OPS_EMAIL_ENV, compose_alert
from orchestration.partnership.settings import get_settings
from orchestration.partnership.warehouse.connection import (
    WarehouseLocked,
    connect,
    table_exists,
    writer_lock,
)
from orchestration.partnership.warehouse.files import sha256_file

LANDING_SENSOR_INTERVAL_S = 60


@dataclass(frozen=True)
class StableFile:
    rel: str
    sha256: str
    contract_id: str | None  # None: a file that cannot be a delivery (registration rejects it, with its reason)


def observe(landing: Path, state: dict) -> tuple[list[StableFile], dict]:
    """One tick: which files became stable since the last, and the state to keep for the next.

    state = {"seen": {path: [size, mtime_ns]}, "done": {path: [size, mtime_ns, sha256]}}"""
    seen_before = state.get("seen", {})
    done = dict(state.get("done", {}))
    seen: dict[str, list] = {}
    stable: list[StableFile] = []
    present = set()
    for item in scan_landing(landing, contracts()):
        rel = item.path.relative_to(landing).as_posix()
        present.add(rel)
        try:
            st = item.path.lstat()
        except FileNotFoundError:
            continue
        sig = [st.st_size, st.st_mtime_ns]
        if rel in done and done[rel][:2] == sig:
            continue  # requested (or known) already, unchanged since
        if seen_before.get(rel) != sig:
            seen[rel] = sig  # new or still growing: look again next tick
            continue
        digest = "symlink" if item.path.is_symlink() else sha256_file(item.path)
        if rel in done and done[rel][2] == digest:
            done[rel] = [*sig, digest]  # touched, same bytes: not a new delivery
            continue
        contract_id = f"{item.agency}__{item.extract}" if item.problem is None else None
        stable.append(StableFile(rel, digest, contract_id))
    done = {k: v for k, v in done.items() if k in present}
    return stable, {"seen": seen, "done": done}


def _registered(paths_and_hashes: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (landing path, sha256) pairs ops.deliveries holds. Raises WarehouseLocked while a run writes."""
    settings = get_settings()
    if not settings.warehouse_path.exists():
        return set()
    with writer_lock(settings.warehouse_path, purpose="landing sensor (reading ops.deliveries)", timeout=0):
        with connect(settings.warehouse_path, read_only=True, retries=1) as con:
            if not table_exists(con, "ops", "deliveries"):
                return set()
            rows = con.execute("select landing_path, sha256 from ops.deliveries").fetchall()
    known = {(p, s) for p, s in rows}
    return {ph for ph in paths_and_hashes if ph in known}


def run_request(f: StableFile) -> dg.RunRequest:
    if f.contract_id is not None:
        key = extract_key(contracts()[f.contract_id])
        assets = [DELIVERIES, key]
        checks = [dg.AssetCheckKey(key, n) for n in ("contract_file_level", "quarantine_within_tolerance", "delivery_freshness")]
    else:
        assets, checks = [DELIVERIES], []
    return dg.RunRequest(
        run_key=f"{f.rel}@{f.sha256}",
        asset_selection=assets,
        asset_check_selection=checks,
        tags={"partnership/landing_path": f.rel, "partnership/sha256": f.sha256,
              "partnership/contract": f.contract_id or "none"},
    )


@dg.sensor(name="landing_sensor", job=ingest_job, minimum_interval_seconds=LANDING_SENSOR_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts the ingest job for each new delivery in landing/ once its file has stopped growing "
                       "(size and mtime unchanged across two ticks); one run per file and content, never twice.")
def landing_sensor(context: dg.SensorEvaluationContext):
    landing = get_settings().landing_dir
    state = json.loads(context.cursor) if context.cursor else {}
    stable, new_state = observe(landing, state)
    if stable:
        try:
            known = _registered([(f.rel, f.sha256) for f in stable])
        except WarehouseLocked as exc:
            # A run is writing; keep last tick's view of these files so they count as stable next tick.
            for f in stable:
                new_state["seen"][f.rel] = state["seen"][f.rel]
            context.update_cursor(json.dumps(new_state, sort_keys=True))
            return dg.SkipReason(f"{len(stable)} stable file(s) wait for the warehouse: {exc}")
        for f in stable:
            st = (landing / f.rel).lstat()
            new_state["done"][f.rel] = [st.st_size, st.st_mtime_ns, f.sha256]
        requests = [run_request(f) for f in stable if (f.rel, f.sha256) not in known]
    else:
        requests = []
    context.update_cursor(json.dumps(new_state, sort_keys=True))
    if not requests:
        growing = len(new_state["seen"])
        return dg.SkipReason(f"no new stable delivery ({growing} file(s) new or still growing)" if growing
                             else "no new delivery")
    for r in requests:
        context.log.info(f"stable: {r.tags['partnership/landing_path']}; requesting run {r.run_key}")
    return requests


# ---- alerts ---------------------------------------------------------------------------------


@dg.run_failure_sensor(name="ops_failure_alert", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="E-mails operations (PARTNERSHIP_OPS_EMAIL, over SMTP) the failed step and a link "
                                   "to the run, for any failed run of this code location.")
def ops_failure_alert(context: dg.RunFailureSensorContext):
    from orchestration.partnership.ops.smtp import send_message, smtp_settings

    to = os.environ.get(OPS_EMAIL_ENV)
    smtp = smtp_settings()
    run = context.dagster_run
    if not to or smtp is None:
        missing = [n for n, v in ((OPS_EMAIL_ENV, to), ("PARTNERSHIP_SMTP_HOST", smtp)) if not v]
        context.log.warning(f"run {run.run_id} failed; no alert sent: {', '.join(missing)} not set")
        return dg.SkipReason(f"no alert: {', '.join(missing)} not set")
    msg = compose_alert(run, context.get_step_failure_events(), smtp.sender, to)
    send_message(msg, smtp)  # an SMTP error fails this tick; the daemon shows it and retries
    context.log.info(f"alert for run {run.run_id} sent to {to} at {datetime.now(timezone.utc):%H:%M:%S} UTC")
