"""`partnership`: the command line of the partnership data warehouse.

    partnership demo                       the whole demo: key, deliveries, a night, where outputs are
    partnership generate [--preset small]  write the demo partnership's deliveries into landing/
    partnership run                        run the nightly job now (the job the schedule runs)
    partnership releases                   list published releases
    partnership contracts sources          rewrite the dbt sources from the contracts
    partnership dev                        the Dagster UI on this data folder
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .dbt_runner import DbtSetupError, dbt_parse
from .settings import Settings, get_settings

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DAGSTER_YAML = """\
# Written by `partnership`: this instance keeps run history under the data folder.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 1
"""


class CliError(Exception):
    pass


def _environment(settings: Settings) -> None:
    """Point Dagster, dbt and the domain code at one data folder."""
    os.environ["PARTNERSHIP_DATA_DIR"] = str(settings.data_dir)
    os.environ["PARTNERSHIP_WAREHOUSE"] = str(settings.warehouse_path)
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(DAGSTER_YAML)


def _demo_key(settings: Settings) -> None:
    from . import pseudonymise as ps

    if os.environ.get(ps.KEY_ENV) or os.environ.get(ps.KEY_FILE_ENV):
        return
    path = ps.create_demo_key(settings.secrets_dir / "pseudonym.key")
    os.environ[ps.KEY_FILE_ENV] = str(path)
    console.print(f"[yellow]Demo mode:[/] no pseudonymisation key was set, so a local demo key is used: {path}\n"
                  f"  (outside the demo, set {ps.KEY_ENV} or {ps.KEY_FILE_ENV}; never commit a key)")


def cmd_generate(args: argparse.Namespace) -> int:
    from .generator import generate

    settings = get_settings()
    with console.status(f"Generating the demo partnership ({args.preset}, seed {args.seed})…"):
        summary = generate(settings.data_dir, preset=args.preset, seed=args.seed,
                           as_of=date.fromisoformat(args.as_of) if args.as_of else None,
                           violation_rate=args.violation_rate)
    files = summary.get("files") if isinstance(summary, dict) else None
    console.print(f"Deliveries written to {settings.landing_dir}" + (f" ({len(files)} files)" if files else ""))
    console.print(f"Reference data in {settings.reference_dir}; ground truth (tests only) in {settings.truth_dir}")
    return 0


def run_night(settings: Settings, quiet: bool = False):
    """Execute the nightly job in this process, on the persistent Dagster instance."""
    import dagster as dg

    from .pseudonymise import load_key

    load_key()  # fail before anything runs, with a clear message, if there is no key
    _environment(settings)
    with console.status("Building the dbt manifest…", spinner="dots") if not quiet else _null():
        dbt_parse(settings)
    from orchestration.definitions import defs

    job = defs.resolve_job_def("nightly")
    instance = dg.DagsterInstance.get()
    run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    status = console.status("Running the night…", spinner="dots") if not quiet else _null()
    with status as st, _StepProgress(st):
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
    return result


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


class _StepProgress:
    """Shows the step being run beside the spinner, from Dagster's own step events."""

    def __init__(self, status):
        self.status = status

    def __enter__(self):
        import logging

        if self.status is None:
            return self
        status = self.status

        class Handler(logging.Handler):
            def emit(self, record):
                meta = getattr(record, "dagster_meta", None) or {}
                step = meta.get("step_key")
                event = meta.get("dagster_event")
                if step and event is not None and getattr(event, "event_type_value", "") == "STEP_START":
                    status.update(f"Running the night… [bold]{step}[/]")

        self.handler = Handler(level=logging.DEBUG)
        self.logger = logging.getLogger("dagster")
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        if self.status is not None:
            self.logger.removeHandler(self.handler)
        return False


def _summary(settings: Settings, result) -> None:
    from .warehouse import connect

    with connect(settings.warehouse_path, read_only=True) as con:
        rows = con.execute(
            """select coalesce(contract_id, '(unknown)'), count(*) filter (where status = 'accepted'),
                      count(*) filter (where status = 'rejected'), coalesce(sum(rows_read), 0),
                      coalesce(sum(rows_valid), 0), coalesce(sum(rows_quarantined), 0)
               from ops.deliveries group by 1 order by 1""").fetchall()
        releases = con.execute(
            """select protocol_id, status, coalesce(path, ''), coalesce(reason, '') from ops.release_log
               where seq in (select max(seq) from ops.release_log group by protocol_id) order by protocol_id""").fetchall() \
            if con.execute("select count(*) from information_schema.tables where table_schema='ops' and table_name='release_log'").fetchall()[0][0] else []
    table = Table(title="Deliveries", show_lines=False)
    for col in ("extract", "accepted", "rejected", "rows read", "valid", "quarantined"):
        table.add_column(col, justify="right" if col != "extract" else "left")
    for r in rows:
        table.add_row(*(str(v) for v in r))
    console.print(table)
    for pid, status, path, reason in releases:
        console.print(f"  release [bold]{pid}[/]: {status} {path or reason}")
    if not result.success:
        failed = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        for e in failed:
            err.print(f"[red]step failed:[/] {e.step_key}: {e.event_specific_data.error.message.strip()[:500] if e.event_specific_data and e.event_specific_data.error else ''}")
    console.print()
    console.print("[bold]Where things are[/]")
    console.print(f"  releases:          {settings.releases_dir}")
    console.print(f"  contract reports:  {settings.reports_dir / 'contracts'}")
    console.print(f"  warehouse:         {settings.warehouse_path}  (secure zone: ops, raw, quarantine, valid, marts)")
    console.print(f"  run history (UI):  make dev  → http://127.0.0.1:3000")


def cmd_run(args: argparse.Namespace) -> int:
    settings = get_settings()
    result = run_night(settings)
    _summary(settings, result)
    return 0 if result.success else 1


def cmd_demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    _demo_key(settings)
    if not (settings.landing_dir.exists() and any(settings.landing_dir.rglob("*.*"))):
        cmd_generate(args)
    else:
        console.print(f"Deliveries already in {settings.landing_dir}; not generating again.")
    return cmd_run(args)


def cmd_releases(args: argparse.Namespace) -> int:
    settings = get_settings()
    table = Table(title="Releases")
    for col in ("protocol", "date", "rows", "content sha256", "path"):
        table.add_column(col)
    for manifest in sorted(settings.releases_dir.glob("*/*/manifest.json")):
        m = json.loads(manifest.read_text())
        table.add_row(m["protocol"]["id"], m["release_date"], str(sum(m["row_counts"].values())),
                      m["content_sha256"][:16], str(manifest.parent))
    console.print(table)
    return 0


def cmd_contracts_sources(args: argparse.Namespace) -> int:
    from .contracts import load_contracts
    from .dbt_sources import write_sources

    settings = get_settings()
    path = write_sources(load_contracts(settings.contracts_dir), settings.dbt_project_dir)
    console.print(f"wrote {path}")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    settings = get_settings()
    _environment(settings)
    dbt_parse(settings)
    dagster = Path(sys.executable).with_name("dagster")
    return subprocess.call([str(dagster), "dev", "-w", str(settings.project_root / "workspace.yaml")],
                           cwd=settings.project_root)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partnership", description="The partnership data warehouse.")
    sub = p.add_subparsers(dest="command", required=True)

    def gen_args(sp):
        sp.add_argument("--preset", default="small", help="small (tests), district (Riverside, 120k), county (1M)")
        sp.add_argument("--seed", type=int, default=42)
        sp.add_argument("--as-of", default=None, help="last day of the demo data (YYYY-MM-DD)")
        sp.add_argument("--violation-rate", type=float, default=0.02)

    g = sub.add_parser("generate", help="write the demo partnership's deliveries")
    gen_args(g)
    g.set_defaults(func=cmd_generate)
    d = sub.add_parser("demo", help="key, demo deliveries, one night, and where the outputs are")
    gen_args(d)
    d.set_defaults(func=cmd_demo)
    r = sub.add_parser("run", help="run the nightly job now")
    r.set_defaults(func=cmd_run)
    rel = sub.add_parser("releases", help="list published releases")
    rel.set_defaults(func=cmd_releases)
    c = sub.add_parser("contracts", help="contract tools")
    csub = c.add_subparsers(dest="contracts_command", required=True)
    cs = csub.add_parser("sources", help="rewrite dbt sources from the contracts")
    cs.set_defaults(func=cmd_contracts_sources)
    dv = sub.add_parser("dev", help="the Dagster UI on this data folder")
    dv.set_defaults(func=cmd_dev)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, DbtSetupError) as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    except Exception as exc:  # a clear line for people; the trace only when asked for
        if os.environ.get("PARTNERSHIP_DEBUG"):
            raise
        from .pseudonymise import PseudonymKeyError
        from .warehouse import WarehouseLocked

        if isinstance(exc, (PseudonymKeyError, WarehouseLocked)):
            err.print(f"[red]error:[/] {exc}")
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
