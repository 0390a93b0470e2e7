"""Whether the schedules and sensors start switched on: only where the operator says so
(`PARTNERSHIP_AUTOMATION=on`, as the production services' environment file does, docs/operations.md).
Elsewhere (a demo, a laptop, `make dev`) they start switched off, so opening the UI never starts a
night, an hourly check or an ingest on its own; each can still be switched on in the UI."""

from __future__ import annotations

import os

import dagster as dg

AUTOMATION_ENV = "PARTNERSHIP_AUTOMATION"


def automation_on() -> bool:
    return os.environ.get(AUTOMATION_ENV, "").strip().lower() in ("on", "1", "true", "yes")


def schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if automation_on() else dg.DefaultScheduleStatus.STOPPED


def sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if automation_on() else dg.DefaultSensorStatus.STOPPED
