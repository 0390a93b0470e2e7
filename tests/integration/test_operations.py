"""Running unattended: the landing sensor, the writer lock, the failure alert (real files, real
DuckDB, real Dagster runs and instance, a real SMTP server on loopback, real subprocesses)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from email import message_from_bytes
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.partnership.warehouse.files import sha256_file
from tests.conftest import _ENV_KEYS, TEST_KEY, use_data_dir

FILE = "county_ambulance/incidents/incidents_20261126.csv"  # late deliveries warn, not reject: accepted
OTHER = "riverside_acute/ae_attendances/ae_attendances_20261126.csv"
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source(demo_night):
    """The demo partnership's deliveries (the session's night generated them), to copy file by file."""
    settings, _ = demo_night
    return settings.landing_dir


@pytest.fixture(scope="module")
def ops_env(tmp_path_factory, source, saved_environment):
    """An empty data folder (landing, warehouse, Dagster instance) and the code location."""
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    data_dir = tmp_path_factory.mktemp("ops")
    settings = use_data_dir(data_dir)
    settings.landing_dir.mkdir(parents=True)
    from orchestration.runtime.instance import prepare_instance

    prepare_instance(settings)
    from orchestration.definitions import (
        defs,  # the session's night built the dbt manifest
    )

    instance = dg.DagsterInstance.get()
    yield settings, defs, instance
    instance.dispose()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _tick(defs, instance, cursor):
    from orchestration.defs.sensors import landing_sensor

    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    result = landing_sensor(ctx)
    requests = result if isinstance(result, list) else []
    return requests, result, ctx.cursor


def _deliveries(settings):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("select landing_path, sha256, status, rows_read, rows_valid, rows_quarantined "
                           "from ops.deliveries order by delivery_id").fetchall()


def test_the_landing_sensor_requests_one_run_per_file_once_it_has_stopped_growing_and_never_twice(ops_env, source):
    settings, defs, instance = ops_env
    landing = settings.landing_dir
    requests, result, cursor = _tick(defs, instance, None)
    assert requests == [] and isinstance(result, dg.SkipReason)

    data = (source / FILE).read_bytes()
    target = landing / FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(data[: len(data) // 2])  # an agency's upload, half-way
    requests, _, cursor = _tick(defs, instance, cursor)
    assert requests == []  # seen for the first time
    with open(target, "ab") as fh:
        fh.write(data[len(data) // 2:])
    requests, _, cursor = _tick(defs, instance, cursor)
    assert requests == []  # it grew since the last tick
    requests, _, cursor = _tick(defs, instance, cursor)
    assert len(requests) == 1  # unchanged across two ticks: stable
    request = requests[0]
    digest = sha256_file(target)
    assert request.run_key == f"{FILE}@{digest}"
    assert request.tags["partnership/landing_path"] == FILE
    assert {k.to_user_string() for k in request.asset_selection} == {"ops/deliveries", "valid/county_ambulance__incidents"}
    assert _tick(defs, instance, cursor)[0] == []  # never again for the same file

    # The run it asks for processes exactly that file, whole (real run, real instance).
    job = defs.resolve_job_def("ingest")
    result = job.execute_in_process(instance=instance, asset_selection=request.asset_selection, tags=request.tags)
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run.tags["partnership/landing_path"] == FILE
    rows = _deliveries(settings)
    assert [(p, s, st) for p, s, st, *_ in rows] == [(FILE, digest, "accepted")]
    _, _, _, read, valid, quarantined = rows[0]
    assert read == valid + quarantined == data.count(b"\n") - 1

    # Touched, same bytes: not a new delivery; nor after a restart that lost the cursor.
    os.utime(target)
    for state in (cursor, None):
        c = state
        for _ in range(3):
            requests, _, c = _tick(defs, instance, c)
            assert requests == []
    cursor = c

    # The same path with new bytes is a new delivery: one more run, with another key.
    with open(target, "ab") as fh:
        fh.write(data.splitlines(keepends=True)[1])
    requests, _, cursor = _tick(defs, instance, cursor)
    assert requests == []
    requests, _, cursor = _tick(defs, instance, cursor)
    assert [r.run_key for r in requests] == [f"{FILE}@{sha256_file(target)}"]
    target.write_bytes(data)  # put it back as it was for the tests below
    os.utime(target, ns=(time.time_ns(), time.time_ns()))


def test_while_another_launch_writes_a_stable_file_waits_for_the_next_tick(ops_env, source):
    settings, defs, instance = ops_env
    cursor = _tick(defs, instance, None)[2]
    target = settings.landing_dir / OTHER
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / OTHER, target)
    holder = _hold_lock(settings, seconds=60)
    try:
        requests, _, cursor = _tick(defs, instance, cursor)
        assert requests == []
        requests, result, cursor = _tick(defs, instance, cursor)
        assert requests == [] and isinstance(result, dg.SkipReason)
        assert f"pid {holder.pid}" in result.skip_message and "test holder" in result.skip_message
    finally:
        holder.kill()
        holder.wait()
    requests, _, cursor = _tick(defs, instance, cursor)
    assert [r.tags["partnership/landing_path"] for r in requests] == [OTHER]


def _hold_lock(settings, seconds: float) -> subprocess.Popen:
    """Another process holding the warehouse writer lock, as a running night would."""
    code = ("import sys, time\n"
            "from orchestration.partnership.warehouse.connection import writer_lock\n"
            f"with writer_lock({str(settings.warehouse_path)!r}, purpose='test holder'):\n"
            "    print('held', flush=True)\n"
            f"    time.sleep({seconds})\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_launch_waits_for_the_first_then_fails_cleanly_naming_it(ops_env):
    settings, _, _ = ops_env
    before = _deliveries(settings)
    logs = set((settings.data_dir / "logs").glob("night-*.log"))
    holder = _hold_lock(settings, seconds=120)
    try:
        env = {**os.environ, "PARTNERSHIP_LOCK_TIMEOUT_S": "3", "PARTNERSHIP_DEBUG": ""}
        started = time.monotonic()
        proc = subprocess.run([str(Path(sys.executable).with_name("partnership")), "run"], cwd=PROJECT, env=env,
                              capture_output=True, text=True, timeout=120)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stderr.split())
    assert "waiting for the warehouse" in message
    assert f"pid {holder.pid}" in message and "test holder" in message and "holding it since" in message
    assert "nothing was done" in message
    assert waited >= 3
    assert set((settings.data_dir / "logs").glob("night-*.log")) == logs  # no night started
    assert _deliveries(settings) == before


# ---- the failure alert -------------------------------------------------------------------------


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    saved = {k: os.environ.get(k) for k in ("PARTNERSHIP_SMTP_HOST", "PARTNERSHIP_SMTP_PORT", "PARTNERSHIP_SMTP_FROM",
                                            "PARTNERSHIP_OPS_EMAIL", "PARTNERSHIP_UI_URL")}
    os.environ.update({"PARTNERSHIP_SMTP_HOST": "127.0.0.1", "PARTNERSHIP_SMTP_PORT": str(port),
                       "PARTNERSHIP_SMTP_FROM": "warehouse@partnership.example",
                       "PARTNERSHIP_OPS_EMAIL": "ops@partnership.example",
                       "PARTNERSHIP_UI_URL": "http://warehouse.partnership.example:3000/"})
    yield inbox
    controller.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_a_failed_run_emails_operations_the_failed_step_and_a_link_to_the_run(ops_env, source, smtp_server):
    from orchestration.defs.sensors import ops_failure_alert

    settings, defs, instance = ops_env
    target = settings.landing_dir / "county_police/incidents/incidents_20261126.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "county_police/incidents/incidents_20261126.csv", target)
    from orchestration.partnership.ingest.night import check_key

    check_key(settings)  # the warehouse is built with the test key
    os.environ["PARTNERSHIP_PSEUDONYM_KEY"] = "a-different-key-" + "9" * 40  # a misconfigured key: the step fails
    try:
        job = defs.resolve_job_def("ingest")
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        asset_selection=[dg.AssetKey(["ops", "deliveries"]),
                                                         dg.AssetKey(["valid", "county_police__incidents"])])
    finally:
        os.environ["PARTNERSHIP_PSEUDONYM_KEY"] = TEST_KEY
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(sensor_name="ops_failure_alert", dagster_instance=instance,
                                                 dagster_run=run, dagster_event=failure).for_run_failure()
    ops_failure_alert(context)

    assert len(smtp_server.messages) == 1
    rcpt, msg = smtp_server.messages[0]
    assert rcpt == ["ops@partnership.example"]
    assert "run failed: ingest" in msg["Subject"] and "valid__county_police__incidents" in msg["Subject"]
    body = msg.get_payload(decode=True).decode()
    assert f"http://warehouse.partnership.example:3000/runs/{run.run_id}" in body
    assert "valid__county_police__incidents: PseudonymKeyError" in body
    assert "differs from the one this warehouse was built with" in body
    assert "9999999999" not in body and TEST_KEY not in body  # no key material in the alert


# ---- freshness ---------------------------------------------------------------------------------


def test_a_contracts_delivery_sla_becomes_a_freshness_verdict():
    from datetime import datetime

    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.ops.freshness import assess_freshness
    from orchestration.partnership.settings import get_settings

    contracts = load_contracts(get_settings().contracts_dir)
    nightly = contracts["riverside_acute__emergency_admissions"]  # due 06:00 London the day after the file's date
    history = [("emergency_admissions_20261125.csv", "accepted", datetime(2026, 11, 26, 1, 30)),
               ("emergency_admissions_20261126.csv", "accepted", datetime(2026, 11, 27, 7, 42)),  # late
               ("emergency_admissions_20261127.csv", "rejected", datetime(2026, 11, 28, 1, 0))]  # not accepted
    on_time = assess_freshness(nightly, history, datetime(2026, 11, 28, 5, 59))
    assert on_time.fresh and on_time.latest_file == "emergency_admissions_20261126.csv"
    assert on_time.next_due == datetime(2026, 11, 28, 6, 0)  # GMT in November
    assert [x["file"] for x in on_time.late] == ["emergency_admissions_20261126.csv"]
    assert on_time.late[0]["minutes_late"] == 102
    overdue = assess_freshness(nightly, history, datetime(2026, 11, 28, 9, 0))
    assert not overdue.fresh and overdue.hours_overdue == 3.0
    summer = assess_freshness(nightly, [("emergency_admissions_20260630.csv", "accepted", datetime(2026, 7, 1, 3))],
                              datetime(2026, 7, 2, 4, 59))
    assert summer.next_due == datetime(2026, 7, 2, 5, 0) and summer.fresh  # 06:00 BST is 05:00 UTC
    monthly = contracts["nhs_optout__opt_outs"]  # due on the file's date: a month after the last one
    m = assess_freshness(monthly, [("opt_outs_20261031.csv", "accepted", datetime(2026, 10, 31, 1))],
                         datetime(2026, 12, 1, 12))
    assert m.next_due == datetime(2026, 11, 30, 6, 0) and not m.fresh  # 31 Oct + 1 month = 30 Nov
    nothing = assess_freshness(monthly, [], datetime(2026, 12, 1))
    assert not nothing.fresh and "no delivery accepted yet" in nothing.summary


def test_the_freshness_checks_run_on_the_warehouse_and_show_late_and_overdue_deliveries(ops_env):
    settings, defs, instance = ops_env
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        delivered = {c for (c,) in con.execute(
            "select distinct contract_id from ops.deliveries where status = 'accepted'").fetchall()}
    assert "county_ambulance__incidents" in delivered  # its 26 Nov file, landed today: late, accepted (late: warn)
    result = defs.resolve_job_def("delivery_freshness").execute_in_process(instance=instance)
    assert result.success
    evaluations = {e.asset_key.path[-1]: e for e in
                   (ev.event_specific_data for ev in result.all_events if ev.event_type_value == "ASSET_CHECK_EVALUATION")}
    from orchestration.partnership.catalogue import contracts

    assert set(evaluations) == set(contracts())  # one verdict per contract
    ambulance = evaluations["county_ambulance__incidents"]
    # Replaying 28 Nov (judged at 12:00 London): the 27 Nov file was due at 06:00 and has not come.
    assert not ambulance.passed and ambulance.metadata["hours_overdue"].value == 6.0
    assert ambulance.metadata["late_deliveries"].value == 1
    assert "incidents_20261126.csv" in ambulance.metadata["late"].value
    never = [k for k, e in evaluations.items() if k not in delivered]
    assert never and all(not evaluations[k].passed for k in never)  # nothing accepted yet: not fresh
