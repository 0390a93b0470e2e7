"""The alert operations get when a run fails: which job, which steps and why, and a link to the run.

Composed from what the orchestrator reports of the run (`run_id`, `job_name`, `tags`) and of
each failed step (`step_key`, and the error in `event_specific_data.error`, with its `cause`
chain); the Dagster layer's run-failure sensor passes those in and sends the message.
"""

from __future__ import annotations

import os
from email.message import EmailMessage

OPS_EMAIL_ENV = "PARTNERSHIP_OPS_EMAIL"
UI_URL_ENV = "PARTNERSHIP_UI_URL"  # how operations reach the Dagster UI, for links in alerts
DEFAULT_UI_URL = "http://127.0.0.1:3000"


def ui_url() -> str:
    """Where operations reach the Dagster UI (`PARTNERSHIP_UI_URL`), for the link to the run."""
    return (os.environ.get(UI_URL_ENV) or DEFAULT_UI_URL).rstrip("/")


def compose_alert(run, failures: list, sender: str, to: str) -> EmailMessage:
    """The alert for a failed run: job, run id and link, each failed step and its error's first line."""
    link = f"{ui_url()}/runs/{run.run_id}"
    steps = [(e.step_key or "(run)", _first_line(e)) for e in failures] or [("(run)", "the run failed before any step ran")]
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"[partnership] run failed: {run.job_name}, step {', '.join(s for s, _ in steps)}"
    lines = [f"The {run.job_name} run {run.run_id} failed.", "", f"Run: {link}", "", "Failed steps:"]
    lines += [f"  - {step}: {why}" for step, why in steps]
    tags = {k: v for k, v in run.tags.items() if k.startswith(("partnership/", "dagster/schedule", "dagster/sensor"))}
    if tags:
        lines += ["", "Launched with:", *(f"  {k} = {v}" for k, v in sorted(tags.items()))]
    lines += ["", "The run's page shows each step's log. What was not done stays as it was: see "
                  "docs/operations.md (Recovery) before re-running."]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _first_line(event) -> str:
    data = event.event_specific_data
    error = getattr(data, "error", None)
    if error is None:
        return "failed"
    while error.cause is not None:  # Dagster wraps what the step raised: report that
        error = error.cause
    cls = error.cls_name or "Error"
    text = (error.message or "").strip().splitlines()
    # Step errors here come from our own code and tools (no row values); keep the first line, short.
    first = text[0] if text else ""
    if first.startswith(cls):
        first = first[len(cls):].lstrip(": ")
    return f"{cls}: {first[:300]}" if first else cls
