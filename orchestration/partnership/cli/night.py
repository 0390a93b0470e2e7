"""`partnership run`, `demo`, `generate` and `dev`: a night (through the orchestration runtime),
the demo partnership, and the Dagster UI on the data folder."""

from __future__ import annotations

import argparse
import contextlib
import os
from datetime import date

from orchestration.partnership.cli.console import console, err
from orchestration.partnership.settings import Settings, get_settings


class ConsoleProgress:
    """A night's progress on the console: a spinner naming the step being run (none when quiet);
    waiting for the warehouse is always said."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.status = None

    def waiting(self, holder: str) -> None:
        err.print(f"[yellow]waiting for the warehouse:[/] in use by {holder}")

    def phase(self, text: str):
        if self.quiet:
            return contextlib.nullcontext()
        self.status = console.status(text, spinner="dots")
        return self.status

    def step(self, step_key: str) -> None:
        if self.status is not None:
            self.status.update(f"Running the night… [bold]{step_key}[/]")


def run_night(settings: Settings, quiet: bool = False):
    """Execute the nightly job in this process, on the persistent Dagster instance
    (`orchestration.runtime.night.run_night`), the console following it unless `quiet`."""
    from orchestration.runtime.night import run_night as run

    return run(settings, ConsoleProgress(quiet))


def _summary(settings: Settings, night) -> None:
    from rich.table import Table

    from orchestration.partnership.ingest.summary import delivery_totals
    from orchestration.partnership.releases.listing import latest_log_entries

    table = Table(title="Deliveries", show_lines=False)
    for col in ("extract", "accepted", "rejected", "rows read", "valid", "quarantined"):
        table.add_column(col, justify="right" if col != "extract" else "left")
    for t in delivery_totals(settings):
        table.add_row(t.extract, str(t.accepted), str(t.rejected), str(t.rows_read), str(t.rows_valid),
                      str(t.rows_quarantined))
    console.print(table)
    for entry in latest_log_entries(settings):
        console.print(f"  release [bold]{entry.protocol}[/]: {entry.status} {entry.path or entry.reason}")
    if not night.success:
        for step, message in night.failures:
            err.print(f"[red]step failed:[/] {step}: {message[:500]}")
    console.print()
    console.print("[bold]Where things are[/]")
    console.print(f"  releases:          {settings.releases_dir}")
    console.print(f"  contract reports:  {settings.reports_dir / 'contracts'}")
    console.print(f"  dbt docs:          {settings.reports_dir / 'dbt_docs' / 'static_index.html'}  (models, columns, tests, lineage)")
    console.print(f"  warehouse:         {settings.warehouse_path}  (secure zone: ops, raw, quarantine, valid, marts)")
    console.print(f"  this night's log:  {night.log_path}")
    console.print("  run history (UI):  make dev  → http://127.0.0.1:3000")


def cmd_run(args: argparse.Namespace) -> int:
    settings = get_settings()
    night = run_night(settings)
    _summary(settings, night)
    return 0 if night.success else 1


def _demo_key(settings: Settings) -> None:
    import orchestration.partnership.warehouse.pseudonymise as ps
    if os.environ.get(ps.KEY_ENV) or os.environ.get(ps.KEY_FILE_ENV):
        return
    path = ps.create_demo_key(settings.secrets_dir / "pseudonym.key")
    os.environ[ps.KEY_FILE_ENV] = str(path)
    console.print(f"[yellow]Demo mode:[/] no pseudonymisation key was set, so a local demo key is used: {path}\n"
                  f"  (outside the demo, set {ps.KEY_ENV} or {ps.KEY_FILE_ENV}; never commit a key)")


def cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.partnership.demo import generate

    settings = get_settings()
    with console.status(f"Generating the demo partnership ({args.preset}, seed {args.seed})…"):
        summary = generate(settings.data_dir, preset=args.preset, seed=args.seed,
                           as_of=date.fromisoformat(args.as_of) if args.as_of else None,
                           violation_rate=args.violation_rate)
    files = summary.get("files") if isinstance(summary, dict) else None
    console.print(f"Deliveries written to {settings.landing_dir}" + (f" ({len(files)} files)" if files else ""))
    console.print(f"Reference data in {settings.reference_dir}; ground truth (tests only) in {settings.truth_dir}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    _demo_key(settings)
    if not (settings.landing_dir.exists() and any(settings.landing_dir.rglob("*.*"))):
        cmd_generate(args)
    else:
        console.print(f"Deliveries already in {settings.landing_dir}; not generating again.")
    return cmd_run(args)


def cmd_dev(args: argparse.Namespace) -> int:
    from orchestration.runtime.ui import serve_ui

    return serve_ui(get_settings())
