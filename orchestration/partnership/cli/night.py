"""`partnership run`, `demo`, `generate` and `dev`: a night (through the orchestration runtime),
the demo partnership, and the Dagster UI on the data folder."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

from rich.console import Console

from orchestration.partnership.cli.console import console, err, shown, text
from orchestration.partnership.settings import Settings, get_settings


class ConsoleProgress:
    """A night's progress on the console, stage by stage with the time since the night began: in a
    terminal a live list (the current stage with a spinner, the dbt build's nodes done of total);
    otherwise one line per stage. Nothing when quiet; waiting for the warehouse is always said."""

    def __init__(self, quiet: bool = False, live: bool | None = None, out=None):
        self.quiet = quiet
        # Bound to the standard error of now: the night sends the rest of its output to its log file.
        self.out = out or Console(file=sys.stderr, highlight=False)
        self.live = self.out.is_terminal if live is None else live
        self.started = time.monotonic()
        self.bar = None
        self.task = None
        self.label = ""
        self.nodes: tuple[int, int] | None = None

    def waiting(self, holder: str) -> None:
        err.print(f"[yellow]waiting for the warehouse:[/] in use by {shown(holder)}")

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.started)
        return f"{s // 60:d}:{s % 60:02d}"

    @contextlib.contextmanager
    def night(self):
        self.started = time.monotonic()
        if self.quiet or not self.live:
            yield
            self._line_end()
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}{task.fields[count]}"),
                            TimeElapsedColumn(), console=self.out)
        with self.bar:
            try:
                yield
            finally:
                self._finish_task()
        self.out.print(f"night done in {self.elapsed()}")

    def stage(self, label: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self._finish_task()
            self.task = self.bar.add_task(label, total=None, count="")
            return
        self._line_end()
        self.label, self.nodes = label, None
        self.out.print(f"{self.elapsed():>6}  {label}", soft_wrap=True)

    def advance(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=done, total=total, count=f": {done} of {total} nodes done")
        self.nodes = (done, total)

    def _finish_task(self) -> None:
        if self.bar is not None and self.task is not None:
            t = self.bar.tasks[-1]
            self.bar.update(self.task, total=t.total or 1, completed=t.total or 1)
            self.bar.stop_task(self.task)
            self.task = None

    def _line_end(self) -> None:
        """Without a terminal: the nodes a stage finished, once, when the next stage begins."""
        if self.nodes is not None:
            self.out.print(f"{self.elapsed():>6}  {self.label}: {self.nodes[0]} of {self.nodes[1]} nodes done", soft_wrap=True)
            self.nodes = None


def run_night(settings: Settings, quiet: bool = False):
    """Execute the nightly job in this process, on the persistent Dagster instance
    (`orchestration.runtime.night.run_night`), the console following it unless `quiet`."""
    from orchestration.runtime.night import run_night as run

    return run(settings, ConsoleProgress(quiet))


def _command_prefix(settings: Settings) -> str:
    """How to type `partnership` here: as on PATH, else the venv's, relative to this folder; with
    the data folder when it is not the default one."""
    exe = Path(sys.executable).with_name("partnership")
    on_path = shutil.which("partnership")
    if on_path and Path(on_path).resolve() == exe.resolve():
        cmd = "partnership"
    else:
        try:
            cmd = str(exe.relative_to(Path.cwd()))
        except ValueError:
            cmd = str(exe)
    default = (settings.project_root / "data").resolve()
    if settings.data_dir != default:
        cmd = f"PARTNERSHIP_DATA_DIR={shlex.quote(str(settings.data_dir))} {cmd}"
    return cmd


def _summary(settings: Settings, night, since: datetime) -> None:
    from rich import box
    from rich.table import Table

    from orchestration.partnership.catalogue import protocols
    from orchestration.partnership.ingest.summary import delivery_totals
    from orchestration.partnership.releases.listing import latest_log_entries
    from orchestration.partnership.releases.outcomes import NOT_FRESH, no_fresh_data

    totals = delivery_totals(settings, since)
    widest = max((len(t.extract) for t in totals), default=0)
    if totals and console.width >= widest + 50:
        table = Table(title="This night's deliveries", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("extract", no_wrap=True)
        for col in ("accepted", "rejected", "rows read", "valid", "quarantined"):
            table.add_column(col, justify="right", no_wrap=True)
        for t in totals:
            table.add_row(text(t.extract), str(t.accepted), str(t.rejected), str(t.rows_read), str(t.rows_valid),
                          str(t.rows_quarantined))
        console.print(table)
    elif totals:
        # Too narrow for the table without cutting extract ids: one entry per extract instead.
        console.print("[bold]This night's deliveries[/]")
        for t in totals:
            console.print(f"  {shown(t.extract)}", soft_wrap=True)
            console.print(f"      {t.accepted} accepted, {t.rejected} rejected; {t.rows_read} rows read = "
                          f"{t.rows_valid} valid + {t.rows_quarantined} quarantined")
    else:
        console.print("This night: no new deliveries in landing; nothing was loaded.")
    tonight = {e.protocol: e for e in latest_log_entries(settings, since=since)}
    for pid, protocol in sorted(protocols().items()):
        entry = tonight.get(pid)
        if entry is None:  # its step did not run: a step it depends on failed (listed below)
            console.print(f"  release [bold]{shown(pid)}[/]: not run tonight (a step before it failed); "
                          f"{shown(no_fresh_data(protocol))}", soft_wrap=True)
            continue
        said = entry.path or entry.reason
        if entry.status in NOT_FRESH and no_fresh_data(protocol) not in said:
            said = f"{no_fresh_data(protocol)}: {said}"
        console.print(f"  release [bold]{shown(pid)}[/]: {shown(entry.status)} {shown(said)}", soft_wrap=True)
    if not night.success:
        for step, message in night.failures:
            err.print(f"[red]step failed:[/] {shown(step)}: {shown(message[:500])}")
    console.print()
    console.print("[bold]Where things are[/]")
    for what, where in (("releases", settings.releases_dir),
                        ("contract reports", f"{settings.reports_dir / 'contracts'}  (one folder per agency: index.html)"),
                        ("agreements", f"{settings.reports_dir / 'register' / 'index.html'}  (each protocol's page, its state)"),
                        ("dbt docs", f"{settings.reports_dir / 'dbt_docs' / 'static_index.html'}  (models, columns, tests, lineage)"),
                        ("batch rule results", f"{settings.reports_dir / 'gx' / 'data_docs' / 'index.html'}  (Great Expectations Data Docs)"),
                        ("warehouse", f"{settings.warehouse_path}  (secure zone: ops, raw, quarantine, valid, marts)"),
                        ("this night's log", night.log_path)):
        console.print(f"  {what + ':':<18}{shown(where)}", soft_wrap=True)
    cmd = _command_prefix(settings)
    console.print()
    console.print("[bold]Next steps[/] (each works as printed)")
    for line, why in ((f"{cmd} releases", "what was published, for whom, at which level"),
                      (f"{cmd} query --protocol falls-analysts \"select count(*) from falls_pathway_events\"",
                       "SQL on a release"),
                      (f"{cmd} run", "another night: loads what is new in landing"),
                      (f"{cmd} dev --port 3000", "the Dagster UI on this data (Ctrl-C stops it)")):
        console.print(f"  $ {line}", soft_wrap=True, markup=False)
        console.print(f"      {why}")


def cmd_run(args: argparse.Namespace) -> int:
    from orchestration.partnership.ops.rundate import REBUILD_ENV

    if getattr(args, "rebuild", False):
        os.environ[REBUILD_ENV] = "1"  # read by the night's own checks, in this process
    settings = get_settings()
    _say_demo_defaults(settings)
    since = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    night = run_night(settings)
    _summary(settings, night, since)
    return 0 if night.success else 1


def _say_demo_defaults(settings: Settings) -> None:
    from orchestration.partnership.demo.mode import apply_demo_defaults

    for what in apply_demo_defaults(settings):
        err.print(f"[yellow]Demo folder:[/] using {what}", soft_wrap=True)


def _demo_key(settings: Settings) -> None:
    import orchestration.partnership.warehouse.pseudonymise as ps
    if os.environ.get(ps.KEY_ENV) or os.environ.get(ps.KEY_FILE_ENV):
        return
    path = ps.create_demo_key(settings.secrets_dir / "pseudonym.key")
    os.environ[ps.KEY_FILE_ENV] = str(path)
    console.print(f"[yellow]Demo mode:[/] no pseudonymisation key was set, so a local demo key is used: {shown(path)}\n"
                  f"  (in this demo folder `partnership` uses it by itself; outside the demo, set {ps.KEY_ENV} "
                  f"or {ps.KEY_FILE_ENV}; never commit a key)", soft_wrap=True)


def cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.partnership.demo import generate

    settings = get_settings()
    with console.status(f"Generating the demo partnership ({args.preset}, seed {args.seed})…"):
        generate(settings.data_dir, preset=args.preset, seed=args.seed,
                           as_of=date.fromisoformat(args.as_of) if args.as_of else None,
                           violation_rate=args.violation_rate)
    landed = sum(1 for p in settings.landing_dir.rglob("*") if p.is_file())
    console.print(f"Deliveries written to {shown(settings.landing_dir)} ({landed} files)", soft_wrap=True)
    console.print(f"Reference data in {shown(settings.reference_dir)}; ground truth (tests only) in {shown(settings.truth_dir)}",
                  soft_wrap=True)
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
        console.print(f"Deliveries already in {shown(settings.landing_dir)}; not generating again.", soft_wrap=True)
    code = cmd_run(args)
    from orchestration.partnership.cli.portal import create_demo_accounts

    create_demo_accounts(settings)
    return code


def cmd_dev(args: argparse.Namespace) -> int:
    from orchestration.runtime.ui import serve_ui

    settings = get_settings()
    _say_demo_defaults(settings)
    return serve_ui(settings, host=args.host, port=args.port)
