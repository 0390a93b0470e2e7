"""The recipients' and auditors' commands: `partnership releases`, `query`, `audit verify` and
`board-pack`."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from pathlib import Path

from rich import box
from rich.table import Table

from orchestration.partnership.cli.console import CliError, console, err, shown, text
from orchestration.partnership.settings import get_settings


ANALYST_LEVELS = ("aggregate", "pseudonymised")
"""Levels an analyst may work with, if their team is the protocol's recipient; an identifiable
release is for its named recipient's casework only."""


def cmd_releases(args: argparse.Namespace) -> int:
    from orchestration.partnership import catalogue
    from orchestration.partnership.releases.listing import latest_log_entries, published_releases

    settings = get_settings()
    protocols = catalogue.protocols(settings.protocols_dir)
    releases = published_releases(settings)
    groups = (("For analysis (aggregate or pseudonymised): use one only if your team is its recipient",
               [p for p in protocols.values() if p.level in ANALYST_LEVELS]),
              ("Identifiable: only for the named recipient's own casework, never for analysis",
               [p for p in protocols.values() if p.level not in ANALYST_LEVELS]))
    for heading, group in groups:
        console.print(f"[bold]{heading}[/]", soft_wrap=False)
        for p in sorted(group, key=lambda p: p.id):
            console.print(f"  [bold]{shown(p.id)}[/]  {shown(p.level)}, for {shown(p.doc['recipient'].get('name', p.recipient_id))}",
                          soft_wrap=True)
            mine = [r for r in releases if r.protocol == p.id]
            for r in mine[-3:]:
                console.print(f"    {r.release_date}  {r.rows} rows  {r.folder}", soft_wrap=True, markup=False)
            if not mine:
                console.print("    no release published yet")
    latest = latest_log_entries(settings)
    if latest:
        log = Table(title="Latest release log entry per protocol", box=box.SIMPLE_HEAD, pad_edge=False)
        log.add_column("protocol", no_wrap=True)
        log.add_column("date", no_wrap=True)
        log.add_column("status", no_wrap=True)
        log.add_column("reason", overflow="fold")
        for entry in latest:
            log.add_row(*(text(v) for v in (entry.protocol, entry.release_date, entry.status, entry.reason)))
        console.print(log)
    console.print(f"Query one: {Path(sys.argv[0]).name} query --protocol ID \"SQL\"", markup=False)
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """SQL on the protocol's latest release only: read-only, no file access, configuration locked.
    `--protocol` is the id of a protocol file, nothing else: never a path, never a link."""
    import duckdb

    from orchestration.partnership import catalogue

    settings = get_settings()
    known = sorted(catalogue.protocols(settings.protocols_dir))
    if args.protocol not in known:
        raise CliError(f"no protocol {args.protocol!r}; --protocol takes the id of a protocol: one of {', '.join(known)}")
    root = settings.releases_dir.resolve()
    dated = sorted(d for d in (settings.releases_dir / args.protocol).glob("*")
                   if d.is_dir() and not d.name.startswith(".") and _own_file(d / f"{args.protocol}.duckdb", root))
    if not dated:
        raise CliError(f"no published release of {args.protocol!r} in {settings.releases_dir}; "
                       "`partnership releases` lists what is published")
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
    table = Table(title=text(f"{args.protocol} release {dated[-1].name}"))
    for c in columns:
        table.add_column(text(c))
    for r in rows:
        table.add_row(*(text(v) for v in r))  # a value is data, never markup
    console.print(table)
    return 0


def _own_file(path, root) -> bool:
    """A regular file of the release folder itself: no link anywhere on its way out of `root`."""
    if path.is_symlink() or path.parent.is_symlink() or path.parent.parent.is_symlink() or not path.is_file():
        return False
    return path.resolve().is_relative_to(root)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every ops.release_log entry is intact, signed and present, and every published
    folder still on disk is as it was published; 1 otherwise (each problem named)."""
    import orchestration.partnership.releases.log as release_log
    from orchestration.partnership.releases.verify import folder_problems
    from orchestration.partnership.warehouse.connection import connect
    from orchestration.partnership.warehouse.pseudonymise import load_key

    settings = get_settings()
    if not settings.warehouse_path.exists():
        raise CliError(f"no warehouse at {settings.warehouse_path}")
    key = load_key()  # the log key is derived from it: without it no signature can be checked
    with connect(settings.warehouse_path, read_only=True) as con:
        n, problems = release_log.verify_log(con, key)
        entries = release_log.entries(con)
        head = release_log.head(con)
    problems += folder_problems(entries, settings.releases_dir)
    for problem in problems:
        err.print(f"[red]release log:[/] {shown(problem)}")
    if problems:
        return 1
    console.print(f"[green]ok[/] ops.release_log: {n} entries, hash chain intact, every entry signed, none missing; "
                  f"every published folder as published. Head: entry {head[0]}, {head[1]}")
    return 0


def cmd_audit_verify_release(args: argparse.Namespace) -> int:
    """A recipient's check of its copy of a release: exit 0 when every file is as the manifest
    says and (given the warehouse's public key, or its secret) the manifest is the warehouse's."""
    from pathlib import Path

    from orchestration.partnership.releases.verify import verify_release
    from orchestration.partnership.warehouse.pseudonymise import (
        PseudonymKeyError,
        load_key,
    )

    folder = Path(args.folder)
    if not (folder / "manifest.json").is_file():
        raise CliError(f"{folder}: not a release folder (no manifest.json)")
    secret = None
    if args.public_key is None:
        try:
            secret = load_key()  # the operator's own check: the public key is derived from the secret
        except PseudonymKeyError:
            secret = None
    verdict = verify_release(folder, args.public_key, secret)
    for note in verdict.notes:
        console.print(f"  {shown(note)}")
    for problem in verdict.problems:
        err.print(f"[red]release:[/] {shown(problem)}")
    if verdict.problems:
        return 1
    console.print(f"[green]ok[/] {shown(folder)}: every file as the manifest says")
    return 0


def cmd_audit_public_key(args: argparse.Namespace) -> int:
    """The public key recipients check their copies with (derived from the secret, hex)."""
    from orchestration.partnership.releases.signing import public_key_hex
    from orchestration.partnership.warehouse.pseudonymise import load_key

    console.print(public_key_hex(load_key()), markup=False)
    return 0


def cmd_board_pack(args: argparse.Namespace) -> int:
    from orchestration.partnership import catalogue
    from orchestration.partnership.boardpack.build import build_pack, release_dir_for
    from orchestration.partnership.boardpack.mail import MailNotConfigured, send_pack
    from orchestration.partnership.boardpack.model import PackError
    from orchestration.partnership.ops.smtp import smtp_settings

    settings = get_settings()
    protocols = catalogue.protocols(settings.protocols_dir)
    if args.protocol not in protocols:
        raise CliError(f"no protocol {args.protocol!r}; known: {', '.join(sorted(protocols))}")
    protocol = protocols[args.protocol]
    if args.send and smtp_settings() is None:
        raise CliError("--send: PARTNERSHIP_SMTP_HOST is not set, so no e-mail can be sent; nothing was built")
    try:
        folder = release_dir_for(settings.releases_dir, protocol.id, date.fromisoformat(args.date) if args.date else None)
        with console.status(f"Building the board pack from {shown(folder)}…"):
            result = build_pack(folder, protocol, force=True)
    except PackError as exc:
        raise CliError(str(exc)) from None
    console.print(f"board pack {shown(protocol.id)} {result.release_date}:")
    console.print(f"  html: {shown(result.html)}", soft_wrap=True)
    console.print(f"  pdf:  {shown(result.pdf)}", soft_wrap=True)
    if args.send:
        try:
            sent = send_pack(result, protocol, settings.reports_dir, force=True, required=True)
        except MailNotConfigured as exc:
            raise CliError(str(exc)) from None
        console.print(f"e-mail: {shown(sent.detail)}")
    return 0
