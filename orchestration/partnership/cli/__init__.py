"""`partnership`: the command line of the partnership data warehouse.

    partnership demo                       the whole demo: key, deliveries, a night, where outputs are
    partnership generate [--preset small]  write the demo partnership's deliveries into landing/
    partnership run                        run the nightly job now (the job the schedule runs)
    partnership releases                   list published releases and the latest log entry per protocol
    partnership audit verify               check the release log's hash chain
    partnership query --protocol ID "SQL"  read-only SQL on that protocol's latest release only
    partnership contracts sources          rewrite the dbt sources from the contracts
    partnership contracts lint|diff        check contracts; breaking changes between two versions
    partnership check FILE --contract ID   check a file against its contract before sending it
    partnership dev                        the Dagster UI on this data folder
    partnership board-pack --protocol ID [--date D] [--send]   rebuild a board pack from a release
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

from orchestration.partnership.dbt.runner import DbtSetupError, dbt_parse
from orchestration.partnership.settings import Settings, get_settings

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_DAGSTER_YAML_V1 = """\
# Written by `partnership`: this instance keeps run history under the data folder.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
  runs:
    max_concurrent_runs: 1
"""
DAGSTER_YAML = _DAGSTER_YAML_V1 + """\
# Dagster's SQLite event log, each database kept open rather than opened per event
# (orchestration/runtime/event_log.py); same files under $DAGSTER_HOME/history/runs.
event_log_storage:
  module: orchestration.runtime.event_log
  class: PartnershipEventLogStorage
"""
# Earlier versions written by `partnership`, replaced by the current one; a file edited by hand is left alone.
_PREVIOUS_DAGSTER_YAML = (_DAGSTER_YAML_V1,)


class CliError(Exception):
    pass


def _environment(settings: Settings) -> None:
    """Point Dagster, dbt and the domain code at one data folder."""
    os.environ["PARTNERSHIP_DATA_DIR"] = str(settings.data_dir)
    os.environ["PARTNERSHIP_WAREHOUSE"] = str(settings.warehouse_path)
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Dagster then hands a run's planned materializations and asset checks (~600 a night) to the
    # event log as one batch, which it stores in one transaction per database (dagster_storage.py).
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "10000")
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in _PREVIOUS_DAGSTER_YAML:
        tmp = config.with_name(config.name + ".tmp")
        tmp.write_text(DAGSTER_YAML)
        tmp.replace(config)


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


def run_night(settings: Settings, quiet: bool = False):
    """Execute the nightly job in this process, on the persistent Dagster instance.

    dbt's and Dagster's own output goes to a log file under <data>/logs/; the console shows
    the step being run and, at the end, a summary."""
    from orchestration.partnership.warehouse.connection import memory_limit, writer_lock
    from orchestration.partnership.warehouse.pseudonymise import load_key

    load_key()  # fail before anything runs, with a clear message, if there is no key
    memory_limit()  # or a memory limit DuckDB would refuse
    _environment(settings)

    # One launch writes at a time (docs/operations.md): a second waits, then fails naming the first.
    with writer_lock(settings.warehouse_path, purpose="partnership run",
                     on_wait=lambda who: err.print(f"[yellow]waiting for the warehouse:[/] in use by {who}")):
        return _run_night_locked(settings, quiet)


def _run_night_locked(settings: Settings, quiet: bool):
    from orchestration.partnership.validation.batch import start_worker, stop_worker

    start_worker()  # imports Great Expectations on the other core while dbt parses and Dagster loads
    try:
        return _run_night_with_worker(settings, quiet)
    finally:
        stop_worker()


def _run_night_with_worker(settings: Settings, quiet: bool):
    import contextlib
    from datetime import datetime

    import dagster as dg

    with console.status("Building the dbt manifest…", spinner="dots") if not quiet else _null():
        dbt_parse(settings)
    from orchestration.definitions import defs
    from orchestration.defs.jobs import reclaim_from_dead_runs

    job = defs.resolve_job_def("nightly")
    instance = dg.DagsterInstance.get()
    reclaim_from_dead_runs(instance)  # a killed night must not keep the warehouse pool's slot (we hold the lock)
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"night-{datetime.now().strftime('%Y%m%d-%H%M%S')}.log"
    status = console.status("Running the night…", spinner="dots") if not quiet else _null()
    # Line-buffered: an operator tailing the log sees a running night, not an empty file.
    with open(log_path, "w", buffering=1) as log, status as st, _StepProgress(st), \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
    result.log_path = log_path
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
    from orchestration.partnership.warehouse.connection import connect, table_exists

    with connect(settings.warehouse_path, read_only=True) as con:
        rows = con.execute(
            """select coalesce(contract_id, '(unknown)'), count(*) filter (where status = 'accepted'),
                      count(*) filter (where status = 'rejected'), coalesce(sum(rows_read), 0),
                      coalesce(sum(rows_valid), 0), coalesce(sum(rows_quarantined), 0)
               from ops.deliveries group by 1 order by 1""").fetchall()
        releases = con.execute(
            """select protocol_id, status, coalesce(path, ''), coalesce(reason, '') from ops.release_log
               where seq in (select max(seq) from ops.release_log group by protocol_id) order by protocol_id""").fetchall() \
            if table_exists(con, "ops", "release_log") else []
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
    console.print(f"  dbt docs:          {settings.reports_dir / 'dbt_docs' / 'static_index.html'}  (models, columns, tests, lineage)")
    console.print(f"  warehouse:         {settings.warehouse_path}  (secure zone: ops, raw, quarantine, valid, marts)")
    console.print(f"  this night's log:  {getattr(result, 'log_path', '')}")
    console.print("  run history (UI):  make dev  → http://127.0.0.1:3000")


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
    from orchestration.partnership.warehouse.connection import connect, table_exists

    settings = get_settings()
    table = Table(title="Releases")
    for col in ("protocol", "date", "level", "rows", "content sha256", "path"):
        table.add_column(col)
    for manifest in sorted(settings.releases_dir.glob("*/*/manifest.json")):
        m = json.loads(manifest.read_text())
        table.add_row(m["protocol"]["id"], m["release_date"], m["protocol"].get("level", ""),
                      str(sum(m["row_counts"].values())), m["content_sha256"][:16], str(manifest.parent))
    console.print(table)
    if settings.warehouse_path.exists():
        with connect(settings.warehouse_path, read_only=True) as con:
            has_log = table_exists(con, "ops", "release_log")
            latest = con.execute(
                """select protocol_id, release_date, status, coalesce(reason, '') from ops.release_log
                   where seq in (select max(seq) from ops.release_log group by protocol_id) order by protocol_id"""
            ).fetchall() if has_log else []
        if latest:
            log = Table(title="Latest release log entry per protocol")
            for col in ("protocol", "date", "status", "reason"):
                log.add_column(col)
            for pid, day, status, reason in latest:
                log.add_row(pid, str(day), status, reason)
            console.print(log)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every ops.release_log entry is intact and none is missing; 1 otherwise."""
    from orchestration.partnership.releases.log import verify_log
    from orchestration.partnership.warehouse.connection import connect

    settings = get_settings()
    if not settings.warehouse_path.exists():
        raise CliError(f"no warehouse at {settings.warehouse_path}")
    with connect(settings.warehouse_path, read_only=True) as con:
        n, problems = verify_log(con)
    for problem in problems:
        err.print(f"[red]release log:[/] {problem}")
    if problems:
        return 1
    console.print(f"[green]ok[/] ops.release_log: {n} entries, hash chain intact, none missing")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """SQL on the protocol's latest release only: read-only, no file access, configuration locked."""
    import duckdb

    settings = get_settings()
    dated = sorted(d for d in (settings.releases_dir / args.protocol).glob("*")
                   if d.is_dir() and not d.name.startswith(".") and (d / f"{args.protocol}.duckdb").exists())
    if not dated:
        raise CliError(f"no published release of {args.protocol!r} in {settings.releases_dir}")
    db = dated[-1] / f"{args.protocol}.duckdb"
    con = duckdb.connect(str(db), read_only=True, config={
        "enable_external_access": False, "autoload_known_extensions": False,
        "autoinstall_known_extensions": False, "lock_configuration": True})
    try:
        cur = con.execute(args.sql)
        columns = [d[0] for d in cur.description or []]
        rows = cur.fetchall()
    except duckdb.Error as exc:
        raise CliError(f"{args.protocol} {dated[-1].name}: {exc}") from None
    finally:
        con.close()
    if args.csv:
        from orchestration.partnership.releases.csv_safety import write_csv

        write_csv(sys.stdout, columns, rows)  # formulas in values are written as text (docs/contracts.md)
        return 0
    table = Table(title=f"{args.protocol} release {dated[-1].name}")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    console.print(table)
    return 0


def cmd_contracts_sources(args: argparse.Namespace) -> int:
    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.dbt.sources import write_sources

    settings = get_settings()
    path = write_sources(load_contracts(settings.contracts_dir), settings.dbt_project_dir)
    console.print(f"wrote {path}")
    return 0


def cmd_board_pack(args: argparse.Namespace) -> int:
    from orchestration.partnership.boardpack.build import build_pack, release_dir_for
    from orchestration.partnership.boardpack.mail import MailNotConfigured, send_pack
    from orchestration.partnership.boardpack.model import PackError
    from orchestration.partnership.ops.smtp import smtp_settings
    from orchestration.partnership.releases.protocols import load_protocols

    settings = get_settings()
    protocols = load_protocols(settings.protocols_dir)
    if args.protocol not in protocols:
        raise CliError(f"no protocol {args.protocol!r}; known: {', '.join(sorted(protocols))}")
    protocol = protocols[args.protocol]
    if args.send and smtp_settings() is None:
        raise CliError("--send: PARTNERSHIP_SMTP_HOST is not set, so no e-mail can be sent; nothing was built")
    try:
        folder = release_dir_for(settings.releases_dir, protocol.id, date.fromisoformat(args.date) if args.date else None)
        with console.status(f"Building the board pack from {folder}…"):
            result = build_pack(folder, protocol, force=True)
    except PackError as exc:
        raise CliError(str(exc)) from None
    console.print(f"board pack {protocol.id} {result.release_date}:")
    console.print(f"  html: {result.html}", soft_wrap=True)
    console.print(f"  pdf:  {result.pdf}", soft_wrap=True)
    if args.send:
        try:
            sent = send_pack(result, protocol, settings.reports_dir, force=True, required=True)
        except MailNotConfigured as exc:
            raise CliError(str(exc)) from None
        console.print(f"e-mail: {sent.detail}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 only if the file would be accepted; 1 if it would be rejected; 2 on a usage error."""
    from datetime import datetime

    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.validation.check import as_json, check_file

    settings = get_settings()
    contracts = load_contracts(settings.contracts_dir)
    if args.contract not in contracts:
        raise CliError(f"no contract {args.contract!r}; known: {', '.join(sorted(contracts))}")
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    arrived = datetime.fromisoformat(args.arrived_at) if args.arrived_at else None
    a = check_file(path, contracts[args.contract], settings, arrived)
    if args.json:
        print(as_json(a))
        return 0 if a.accepted else 1
    colour = "green" if a.accepted else "red"
    console.print(f"[bold]{a.file_name}[/] against [bold]{a.contract_id}[/] v{a.contract_version}: "
                  f"[{colour}]{'would be accepted' if a.accepted else 'would be rejected'}[/]")
    if a.reason:
        console.print(f"  reason: {a.reason}")
    console.print(f"  rows read {a.rows_read} = valid {a.rows_valid} + quarantined {a.rows_quarantined}")
    table = Table(show_lines=False)
    for col in ("rule", "level", "result", "failing rows", "observed", "expected", "examples (masked)"):
        table.add_column(col)
    for r in a.rules:
        result = "pass" if r.passed else ("rows quarantined" if r.level == "row" else "FAIL" if r.severity == "error" else "warn")
        style = "green" if r.passed else ("red" if r.severity == "error" and r.level != "row" else "yellow")
        examples = "; ".join(f"row {x['row']}: " + ", ".join(f"{k}={v}" for k, v in x["values"].items()) for x in r.examples)
        table.add_row(r.rule, r.level, f"[{style}]{result}[/]", "" if r.failing_rows is None else str(r.failing_rows),
                      r.observed or "", r.expected or "", examples)
    console.print(table)
    for w in a.warnings:
        console.print(f"  [yellow]warning:[/] {w}")
    return 0 if a.accepted else 1


def cmd_contracts_lint(args: argparse.Namespace) -> int:
    from orchestration.partnership.contracts.model import (
        ContractError,
        load_contract,
        load_contracts,
    )

    settings = get_settings()
    paths = [Path(p) for p in args.paths] or sorted(settings.contracts_dir.glob("*/*.odcs.yaml"))
    failed = 0
    if not args.paths:
        try:
            load_contracts(settings.contracts_dir)
        except ContractError as exc:
            err.print(f"[red]error:[/] {exc}")
            failed += 1
    datacontract = Path(sys.executable).with_name("datacontract")
    for path in paths:
        try:
            load_contract(path)
        except ContractError as exc:
            err.print(f"[red]error:[/] {exc}")
            failed += 1
            continue
        proc = subprocess.run([str(datacontract), "lint", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            err.print(f"[red]error:[/] {path}: datacontract lint failed\n{proc.stdout[-2000:]}")
            failed += 1
        else:
            console.print(f"[green]ok[/] {path}")
    return 1 if failed else 0


def cmd_contracts_diff(args: argparse.Namespace) -> int:
    import tempfile

    from orchestration.partnership.contracts.diff import compare, version_problem
    from orchestration.partnership.contracts.model import load_contract

    new_path = Path(args.new)
    if args.old:
        old = load_contract(Path(args.old))
    else:
        settings = get_settings()
        rel = new_path.resolve().relative_to(settings.project_root)
        proc = subprocess.run(["git", "show", f"{args.against}:{rel}"], cwd=settings.project_root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CliError(f"{rel}: not found at {args.against} ({proc.stderr.strip()})")
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / new_path.name
            p.write_text(proc.stdout, encoding="utf-8")
            old = load_contract(p)
    new = load_contract(new_path)
    changes = compare(old, new)
    table = Table(title=f"{new.id}: {old.version} → {new.version}")
    for col in ("severity", "where", "change"):
        table.add_column(col)
    for c in changes:
        table.add_row(f"[{'red' if c.severity == 'breaking' else 'green'}]{c.severity}[/]", c.where, c.what)
    console.print(table if changes else "no changes to rules, columns, format or delivery")
    problem = version_problem(old, new, changes)
    if problem:
        err.print(f"[red]error:[/] {problem}")
        return 1
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    settings = get_settings()
    _environment(settings)
    dbt_parse(settings)
    dagster = Path(sys.executable).with_name("dagster")
    # `dagster dev` re-parses the dbt project with the `dbt` on PATH: the one beside this Python.
    os.environ["PATH"] = os.pathsep.join([str(dagster.parent), os.environ.get("PATH", "")])
    return subprocess.call([str(dagster), "dev", "-w", str(settings.project_root / "workspace.yaml")],
                           cwd=settings.project_root)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partnership", description="The partnership data warehouse.")
    sub = p.add_subparsers(dest="command", required=True)

    def gen_args(sp, preset):
        sp.add_argument("--preset", default=preset, help=f"small (tests), district (Riverside, 120k), county (1M); default {preset}")
        sp.add_argument("--seed", type=int, default=42)
        sp.add_argument("--as-of", default=None, help="last day of the demo data (YYYY-MM-DD)")
        sp.add_argument("--violation-rate", type=float, default=0.02)

    g = sub.add_parser("generate", help="write the demo partnership's deliveries")
    gen_args(g, "small")
    g.set_defaults(func=cmd_generate)
    # The demo is Riverside District at its real size, so that ward figures are not all suppressed.
    d = sub.add_parser("demo", help="key, demo deliveries, one night, and where the outputs are")
    gen_args(d, "district")
    d.set_defaults(func=cmd_demo)
    r = sub.add_parser("run", help="run the nightly job now")
    r.set_defaults(func=cmd_run)
    rel = sub.add_parser("releases", help="list published releases")
    rel.set_defaults(func=cmd_releases)
    au = sub.add_parser("audit", help="audit tools")
    ausub = au.add_subparsers(dest="audit_command", required=True)
    av = ausub.add_parser("verify", help="check the hash chain of ops.release_log (exit 1 on an edited or removed entry)")
    av.set_defaults(func=cmd_audit_verify)
    q = sub.add_parser("query", help="run read-only SQL on a protocol's latest release, and nothing else")
    q.add_argument("--protocol", required=True)
    q.add_argument("sql")
    q.add_argument("--csv", action="store_true", help="CSV on standard output")
    q.set_defaults(func=cmd_query)
    c = sub.add_parser("contracts", help="contract tools")
    csub = c.add_subparsers(dest="contracts_command", required=True)
    cs = csub.add_parser("sources", help="rewrite dbt sources from the contracts")
    cs.set_defaults(func=cmd_contracts_sources)
    cl = csub.add_parser("lint", help="check contracts: the project's extension schema and `datacontract lint`")
    cl.add_argument("paths", nargs="*", help="contract files (default: every contract)")
    cl.set_defaults(func=cmd_contracts_lint)
    cd = csub.add_parser("diff", help="breaking changes between two versions of a contract")
    cd.add_argument("new", help="the changed contract file")
    cd.add_argument("old", nargs="?", help="the previous version (default: the file as committed at --against)")
    cd.add_argument("--against", default="HEAD", help="git revision holding the previous version")
    cd.set_defaults(func=cmd_contracts_diff)
    ck = sub.add_parser("check", help="check a file against its contract before sending it (exit 0: would be accepted)")
    ck.add_argument("file")
    ck.add_argument("--contract", required=True, help="contract id, <agency>__<extract>")
    ck.add_argument("--json", action="store_true", help="machine-readable result")
    ck.add_argument("--arrived-at", default=None, help="judge timeliness as if it arrived then (UTC, YYYY-MM-DDTHH:MM)")
    ck.set_defaults(func=cmd_check)
    dv = sub.add_parser("dev", help="the Dagster UI on this data folder")
    dv.set_defaults(func=cmd_dev)
    bp = sub.add_parser("board-pack", help="rebuild a board pack (HTML and PDF) from a published release")
    bp.add_argument("--protocol", required=True, help="an aggregate protocol id, e.g. falls-board")
    bp.add_argument("--date", default=None, help="the release date (YYYY-MM-DD); default: the latest release")
    bp.add_argument("--send", action="store_true", help="e-mail the PDF to the protocol's distribution list")
    bp.set_defaults(func=cmd_board_pack)
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
        from orchestration.partnership.warehouse.connection import (
            SettingError,
            WarehouseLocked,
        )
        from orchestration.partnership.warehouse.pseudonymise import PseudonymKeyError

        if isinstance(exc, (PseudonymKeyError, SettingError, WarehouseLocked)):
            err.print(f"[red]error:[/] {exc}")
            return 2
        raise


def entry() -> None:
    """The `partnership` command: `main`, then a quick exit.

    After a night the process holds millions of Python objects (Dagster's definitions, the dbt
    manifest, dbt-core's and GX's modules) whose one-by-one teardown at interpreter exit takes
    seconds (2.3 s after a county night) once the work is done. Everything is written and closed
    by then: the exit handlers run (the kept Chromium is closed, logs flushed), then the process
    ends without that teardown. An exception still ends it the usual way, with its trace."""
    exit_now(main())


def exit_now(code: int) -> None:
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
