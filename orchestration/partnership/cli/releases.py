"""The recipients' and auditors' commands: `partnership releases`, `query`, `audit verify` and
`board-pack`."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from rich.table import Table

from orchestration.partnership.cli.console import CliError, console, err
from orchestration.partnership.settings import get_settings


def cmd_releases(args: argparse.Namespace) -> int:
    from orchestration.partnership.releases.listing import latest_log_entries, published_releases

    settings = get_settings()
    table = Table(title="Releases")
    for col in ("protocol", "date", "level", "rows", "content sha256", "path"):
        table.add_column(col)
    for r in published_releases(settings):
        table.add_row(r.protocol, r.release_date, r.level, str(r.rows), r.content_sha256[:16], str(r.folder))
    console.print(table)
    latest = latest_log_entries(settings)
    if latest:
        log = Table(title="Latest release log entry per protocol")
        for col in ("protocol", "date", "status", "reason"):
            log.add_column(col)
        for entry in latest:
            log.add_row(entry.protocol, str(entry.release_date), entry.status, entry.reason)
        console.print(log)
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


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every ops.release_log entry is intact and none is missing; 1 otherwise."""
    from orchestration.partnership.releases.audit import verify_log
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


def cmd_board_pack(args: argparse.Namespace) -> int:
    from orchestration.partnership.boardpack.build import build_pack, release_dir_for
    from orchestration.partnership.boardpack.mail import MailNotConfigured, send_pack
    from orchestration.partnership.boardpack.model import PackError
    from orchestration.partnership.ops.smtp import smtp_settings
    from orchestration.partnership import catalogue

    settings = get_settings()
    protocols = catalogue.protocols(settings.protocols_dir)
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
