"""The instance's event log storage (orchestration/runtime/event_log.py): Dagster's
SQLite files with connections kept open. Another process's view of a running run (the UI) must
still see every event, live, and a moved data folder must keep its history."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from orchestration.runtime.event_log import PartnershipEventLogStorage
from orchestration.runtime.instance import DAGSTER_YAML, PREVIOUS_DAGSTER_YAML, prepare_instance


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
def numbers():
    yield dg.Output([1, 2, 3])
    yield dg.AssetCheckResult(check_name="positive", passed=True)


@dg.asset
def total(numbers):
    return sum(numbers)


JOB = dg.Definitions(assets=[numbers, total], jobs=[dg.define_asset_job("tiny")]).resolve_job_def("tiny")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("PARTNERSHIP_DATA_DIR", str(tmp_path))
    from orchestration.partnership.settings import get_settings

    prepare_instance(get_settings())
    return tmp_path / "dagster_home"


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def _event_types(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.dagster_event.event_type_value for e in instance.all_logs(run_id) if e.dagster_event]


def test_dagster_yaml_is_written_and_upgraded_but_a_hand_edited_one_is_kept(home, tmp_path):
    from orchestration.partnership.settings import get_settings

    config = home / "dagster.yaml"
    assert config.read_text() == DAGSTER_YAML
    config.write_text(PREVIOUS_DAGSTER_YAML[0])  # written by an earlier version
    prepare_instance(get_settings())
    assert config.read_text() == DAGSTER_YAML
    edited = PREVIOUS_DAGSTER_YAML[0] + "run_monitoring:\n  enabled: true\n"
    config.write_text(edited)
    prepare_instance(get_settings())
    assert config.read_text() == edited


def test_events_are_stored_in_the_usual_files_and_another_reader_sees_them_while_open(home):
    writer = _instance(home)
    assert isinstance(writer.event_log_storage, PartnershipEventLogStorage)
    result = JOB.execute_in_process(instance=writer)
    assert result.success
    # Dagster's default layout: one database per run beside the index.
    assert (home / "history" / "runs" / f"{result.run_id}.db").exists()
    # The writer's connections are still open: a second instance (another process, e.g. the UI) sees
    # every committed event.
    reader = _instance(home)
    seen = _event_types(reader, result.run_id)
    assert seen == _event_types(writer, result.run_id)
    for kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                 dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.ASSET_MATERIALIZATION):
        assert kind.value in seen
    check = reader.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("numbers"), "positive")])
    assert check and next(iter(check.values())).status.value == "SUCCEEDED"
    assert reader.get_latest_materialization_event(dg.AssetKey("total")) is not None


def test_a_watching_reader_is_woken_by_each_new_event_of_a_running_run(home):
    writer = _instance(home)
    run = writer.create_run_for_job(JOB)
    writer.report_engine_event("first", run)
    reader = _instance(home)
    got: list[str] = []
    woke = threading.Event()

    def callback(entry, cursor):
        got.append(entry.dagster_event.message if entry.dagster_event else entry.user_message)
        woke.set()

    reader.watch_event_logs(run.run_id, None, callback)
    try:
        for message in ("second", "third"):
            woke.clear()
            writer.report_engine_event(message, run)
            deadline = time.time() + 10
            while message not in got and time.time() < deadline:
                woke.wait(0.2)
            # Between checkpoints only the WAL file changes: the watch must follow it.
            assert message in got, f"the watch did not see {message!r} (saw {got})"
    finally:
        reader.end_watch_event_logs(run.run_id, callback)
        reader.dispose()


def test_a_data_folder_moved_elsewhere_keeps_its_history_and_writes_only_there(home, tmp_path, monkeypatch):
    writer = _instance(home)
    run_id = JOB.execute_in_process(instance=writer).run_id
    writer.dispose()
    moved = tmp_path / "moved" / "dagster_home"
    shutil.copytree(home, moved)
    monkeypatch.setenv("DAGSTER_HOME", str(moved))
    there = _instance(moved)
    assert dg.DagsterEventType.RUN_SUCCESS.value in _event_types(there, run_id)
    second = JOB.execute_in_process(instance=there).run_id
    assert (moved / "history" / "runs" / f"{second}.db").exists()
    assert not (home / "history" / "runs" / f"{second}.db").exists()


def test_wipe_closes_the_open_databases_before_deleting_them(home):
    instance = _instance(home)
    run_id = JOB.execute_in_process(instance=instance).run_id
    storage = instance.event_log_storage
    storage.wipe()
    assert not (home / "history" / "runs" / f"{run_id}.db").exists()
    assert storage.get_logs_for_run(run_id) == []
    again = JOB.execute_in_process(instance=instance)
    assert dg.DagsterEventType.RUN_SUCCESS.value in _event_types(_instance(home), again.run_id)


def test_no_base_dir_and_no_dagster_home_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="DAGSTER_HOME"):
        PartnershipEventLogStorage()
    assert os.environ.get("DAGSTER_HOME") is None


def test_a_runs_planned_events_stored_as_one_batch_are_those_stored_one_by_one(home, monkeypatch):
    instance = _instance(home)
    assert int(os.environ["DAGSTER_EVENT_BATCH_SIZE"]) >= 1000  # set by `partnership` for its runs
    check = dg.AssetCheckKey(dg.AssetKey("numbers"), "positive")
    batched = JOB.execute_in_process(instance=instance)
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE")
    single = JOB.execute_in_process(instance=instance)
    planned = {r.run_id: sorted(t for t in _event_types(instance, r.run_id) if t.endswith("_PLANNED")) for r in (batched, single)}
    assert planned[batched.run_id] == planned[single.run_id] == [
        "ASSET_CHECK_EVALUATION_PLANNED", "ASSET_MATERIALIZATION_PLANNED", "ASSET_MATERIALIZATION_PLANNED"]
    history = instance.event_log_storage.get_asset_check_execution_history(check, limit=10)
    assert sorted(h.run_id for h in history) == sorted([batched.run_id, single.run_id])
    assert {h.status.value for h in history} == {"SUCCEEDED"}


def test_a_batch_that_fails_half_way_stores_none_of_its_events(home, monkeypatch):
    instance = _instance(home)
    storage = instance.event_log_storage
    assert isinstance(storage, PartnershipEventLogStorage)
    run = JOB.execute_in_process(instance=instance)
    events = [e for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.event_type_value.endswith("_PLANNED")]
    moved = [e._replace(run_id="another-run") for e in events]
    real, calls = PartnershipEventLogStorage.store_event, []

    def failing(self, event):
        calls.append(event)
        if len(calls) == len(moved):
            raise OSError("disk full")
        real(self, event)

    monkeypatch.setattr(PartnershipEventLogStorage, "store_event", failing)
    with pytest.raises(OSError):
        storage.store_event_batch(moved)
    monkeypatch.setattr(PartnershipEventLogStorage, "store_event", real)
    assert storage.get_logs_for_run("another-run") == []
    storage.store_event_batch(moved)  # and the storage is usable afterwards
    assert len(storage.get_logs_for_run("another-run")) == len(moved) == 3
