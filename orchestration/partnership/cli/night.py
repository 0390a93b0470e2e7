"""`partnership run`, `demo`, `generate` and `dev`: a night (through the orchestration runtime),
the demo partnership, and the Dagster UI on the data folder."""

from __future__ import annotations

import argparse
import contextlib
import os
from datetime import date

from orchestration.partnership.cli.console import console, err, shown, text
from orchestration.partnership.settings import Settings, get_settings


class ConsoleProgress:
    """A night's progress on the console: a spinner naming the step being run (none when quiet);
    waiting for the warehouse is always said."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.status = None

    def waiting(self, holder: str) -> None:
        err.print(f"[yellow]waiting for the warehouse:[/] in use by {shown(holder)}")

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

    from orchestration.partnership.catalogue import protocols
    from orchestration.partnership.ingest.summary import delivery_totals
    from orchestration.partnership.releases.listing import latest_log_entries
    from orchestration.partnership.releases.outcomes import NOT_FRESH, no_fresh_data

    table = Table(title="Deliveries", show_lines=False)
    for col in ("extract", "accepted", "rejected", "rows read", "valid", "quarantined"):
        table.add_column(col, justify="right" if col != "extract" else "left")
    for t in delivery_totals(settings):
        table.add_row(text(t.extract), str(t.accepted), str(t.rejected), str(t.rows_read), str(t.rows_valid),
                      str(t.rows_quarantined))
    console.print(table)
    tonight = {e.protocol: e for e in latest_log_entries(settings, since=night.started_at)}
    for pid, protocol in sorted(protocols().items()):
        entry = tonight.get(pid)
        if entry is None:  # its step did not run: a step it depends on failed (listed below)
            console.print(f"  release [bold]{shown(pid)}[/]: not run tonight (a step before it failed); "
                          f"{shown(no_fresh_data(protocol))}")
            continue
        said = entry.path or entry.reason
        if entry.status in NOT_FRESH and no_fresh_data(protocol) not in said:
            said = f"{no_fresh_data(protocol)}: {said}"
        console.print(f"  release [bold]{shown(pid)}[/]: {shown(entry.status)} {shown(said)}")
    if not night.success:
        for step, message in night.failures:
            err.print(f"[red]step failed:[/] {shown(step)}: {shown(message[:500])}")
    console.print()
    console.print("[bold]Where things are[/]")
    console.print(f"  releases:          {shown(settings.releases_dir)}")
    console.print(f"  contract reports:  {shown(settings.reports_dir / 'contracts')}")
    console.print(f"  agreements:        {shown(settings.reports_dir / 'register' / 'index.html')}  (each protocol's page, its state)")
    console.print(f"  dbt docs:          {shown(settings.reports_dir / 'dbt_docs' / 'static_index.html')}  (models, columns, tests, lineage)")
    console.print(f"  warehouse:         {shown(settings.warehouse_path)}  (secure zone: ops, raw, quarantine, valid, marts)")
    console.print(f"  this night's log:  {shown(night.log_path)}")
    console.print("  run history (UI):  make dev  → http://127.0.0.1:3000")


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.partnership.ops.rundate import REBUILD_ENV

    if getattr(args, "rebuild", False):
        os.environ[REBUILD_ENV] = "1"  # read by the night's own checks, in this process
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
    console.print(f"[yellow]Demo mode:[/] no pseudonymisation key was set, so a local demo key is used: {shown(path)}\n"
                  f"  (outside the demo, set {ps.KEY_ENV} or {ps.KEY_FILE_ENV}; never commit a key)")


def cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.partnership.demo import generate

    settings = get_settings()
    with console.status(f"Generating the demo partnership ({args.preset}, seed {args.seed})…"):
        summary = generate(settings.data_dir, preset=args.preset, seed=args.seed,
                           as_of=date.fromisoformat(args.as_of) if args.as_of else None,
                           violation_rate=args.violation_rate)
    files = summary.get("files") if isinstance(summary, dict) else None
    console.print(f"Deliveries written to {shown(settings.landing_dir)}" + (f" ({len(files)} files)" if files else ""))
    console.print(f"Reference data in {shown(settings.reference_dir)}; ground truth (tests only) in {shown(settings.truth_dir)}")
    return 0


def _demo_folder(settings: Settings) -> None:
    """The demo's data folder (`data/` in a checkout is 0755, as git made it) made the user's alone,
    as a night requires, and said so."""
    import stat

    folder = settings.data_dir
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) & 0o077:
        os.chmod(folder, 0o700)
        console.print(f"[yellow]Demo mode:[/] {shown(folder)} made readable by you alone (chmod 700): the warehouse "
                      "refuses a data folder other users can read")


def cmd_demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    _demo_folder(settings)
    _demo_key(settings)
    if not (settings.landing_dir.exists() and any(settings.landing_dir.rglob("*.*"))):
        cmd_generate(args)
    else:
        console.print(f"Deliveries already in {shown(settings.landing_dir)}; not generating again.")
    code = cmd_run(args)
    from orchestration.partnership.cli.portal import create_demo_accounts

    create_demo_accounts(settings)
    return code


def cmd_dev(args: argparse.Namespace) -> int:
    from orchestration.runtime.ui import serve_ui

    return serve_ui(get_settings())
