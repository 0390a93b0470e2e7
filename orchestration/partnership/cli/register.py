"""The information governance lead's commands: `partnership register` (write the agreement
register), `register hash FILE` (the text a new version's signatories sign) and `register
data-items ID` (the data items a protocol's release reads now)."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from orchestration.partnership.cli.console import CliError, console, shown


def cmd_register(args: argparse.Namespace) -> int:
    from orchestration.partnership import catalogue
    from orchestration.partnership.register.build import write_register
    from orchestration.partnership.settings import get_settings, run_date

    settings = get_settings()
    on = date.fromisoformat(args.date) if args.date else run_date()
    with console.status("Writing the agreement register…"):
        result = write_register(settings, on, catalogue.protocols(settings.protocols_dir),
                                catalogue.contracts(settings.contracts_dir), pdf=not args.no_pdf)
    console.print(f"agreement register as of {on}: {shown(result.folder / 'index.html')}", soft_wrap=True)
    for s in result.standings:
        console.print(f"  {shown(s.protocol.id)}: {shown(', '.join(s.labels))}")
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {shown(w)}", soft_wrap=True)
    return 0


def cmd_register_hash(args: argparse.Namespace) -> int:
    """The sha256 to record as `signature.text_sha256` once this text is signed."""
    from orchestration.partnership.releases.protocols import (
        ProtocolError,
        load_protocol,
        signed_sha256,
    )

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    digest = signed_sha256(path.read_text(encoding="utf-8"))
    print(digest)
    try:
        recorded = (load_protocol(path).doc.get("signature") or {}).get("text_sha256")
    except ProtocolError as exc:
        raise CliError(f"the text hashes to {digest}, but the protocol is not valid: {exc}") from None
    if recorded and recorded != digest:
        console.print(f"[yellow]the signature block records {shown(recorded)}: the file changed since it was signed[/]",
                      soft_wrap=True)
    return 0


def cmd_register_items(args: argparse.Namespace) -> int:
    """The `data_items:` block as the contracts and dbt models say now, to paste into a new version."""
    from orchestration.partnership import catalogue
    from orchestration.partnership.register.lineage import data_items, read_models
    from orchestration.partnership.settings import get_settings

    settings = get_settings()
    protocols = catalogue.protocols(settings.protocols_dir)
    if args.protocol not in protocols:
        raise CliError(f"no protocol {args.protocol!r}; known: {', '.join(sorted(protocols))}")
    items = data_items(protocols[args.protocol], catalogue.contracts(settings.contracts_dir),
                       read_models(settings.dbt_project_dir))
    print("data_items:" + ("" if items else " {}"))
    for cid, cols in items.items():
        print(f"  {cid}: [{', '.join(cols)}]")
    return 0


def add_parser(sub) -> None:
    rg = sub.add_parser("register", help="write the agreement register (HTML and PDF per protocol, and an index)")
    rg.add_argument("--date", default=None, help="the day the states are judged on (YYYY-MM-DD); default: the run date")
    rg.add_argument("--no-pdf", action="store_true", help="HTML only (no headless Chromium)")
    rg.set_defaults(func=cmd_register)
    rsub = rg.add_subparsers(dest="register_command", required=False)
    rh = rsub.add_parser("hash", help="the sha256 of a protocol file's signed text (the file without its signature block)")
    rh.add_argument("file")
    rh.set_defaults(func=cmd_register_hash)
    ri = rsub.add_parser("data-items", help="print a protocol's data items as the contracts and dbt models say now")
    ri.add_argument("protocol")
    ri.set_defaults(func=cmd_register_items)
