"""The `partnership` command's parser, `main` (errors as one line, exit code 2) and `entry`
(the console script)."""

from __future__ import annotations

import argparse
import os
import sys

from orchestration.partnership.cli.console import CliError, err, shown
from orchestration.partnership.cli.contracts import (
    cmd_check,
    cmd_contracts_diff,
    cmd_contracts_lint,
    cmd_contracts_sources,
)
from orchestration.partnership.cli.night import cmd_demo, cmd_dev, cmd_generate, cmd_run
from orchestration.partnership.cli.portal import cmd_portal
from orchestration.partnership.cli.register import add_parser as add_register_parser
from orchestration.partnership.cli.releases import (
    cmd_audit_public_key,
    cmd_audit_verify,
    cmd_audit_verify_release,
    cmd_board_pack,
    cmd_query,
    cmd_releases,
)
from orchestration.partnership.dbt.runner import DbtSetupError
from orchestration.partnership.ops.rundate import RunDateError
from orchestration.partnership.warehouse.permissions import DataFolderOpen, lock_down


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partnership", description="The partnership data warehouse.")
    sub = p.add_subparsers(dest="command", required=True)

    def gen_args(sp, preset):
        sp.add_argument("--preset", default=preset, help="small (tests), district (Riverside, 120k), county (1M), "
                        f"region (5M, generated in five parts); default {preset}")
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
    r.add_argument("--rebuild", action="store_true",
                   help="allow a PARTNERSHIP_RUN_DATE before the latest accepted delivery (a deliberate rebuild as of then)")
    r.set_defaults(func=cmd_run)
    rel = sub.add_parser("releases", help="list published releases")
    rel.set_defaults(func=cmd_releases)
    au = sub.add_parser("audit", help="audit tools")
    ausub = au.add_subparsers(dest="audit_command", required=True)
    av = ausub.add_parser("verify", help="check the release log (chain, signatures, nothing removed) and every published "
                                         "folder against its manifest and log entry (exit 1 naming each change)")
    av.set_defaults(func=cmd_audit_verify)
    avr = ausub.add_parser("verify-release", help="check a copy of a release: its files against its manifest, and the "
                                                  "manifest's signature with the warehouse's public key")
    avr.add_argument("folder", help="the release folder (the one holding manifest.json)")
    avr.add_argument("--public-key", default=None, help="the warehouse's public key (hex), from `partnership audit public-key`")
    avr.set_defaults(func=cmd_audit_verify_release)
    apk = ausub.add_parser("public-key", help="print the public key recipients verify releases with")
    apk.set_defaults(func=cmd_audit_public_key)
    q = sub.add_parser("query", help="run read-only SQL on a protocol's latest release, and nothing else",
                       description="Read-only SQL on the latest published release of one protocol: its tables "
                                   "only (`partnership releases` lists them and who may use each).")
    q.add_argument("--protocol", required=True, metavar="ID",
                   help="the protocol id whose latest release is queried, e.g. falls-analysts")
    q.add_argument("sql", help='one SQL statement, quoted, e.g. "select count(*) from falls_pathway_events"')
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
    dv.add_argument("--port", type=int, default=3000, help="the port the UI listens on (default 3000)")
    dv.add_argument("--host", default="127.0.0.1", help="the address it listens on (default 127.0.0.1, this machine only)")
    dv.set_defaults(func=cmd_dev)
    pt = sub.add_parser("portal", help="the partnership portal on this machine (loopback; docs/portal.md)")
    pt.add_argument("--port", type=int, default=8000)
    pt.add_argument("--workers", type=int, default=2)
    pt.set_defaults(func=cmd_portal)
    bp = sub.add_parser("board-pack", help="rebuild a board pack (HTML and PDF) from a published release")
    bp.add_argument("--protocol", required=True, help="an aggregate protocol id, e.g. falls-board")
    bp.add_argument("--date", default=None, help="the release date (YYYY-MM-DD); default: the latest release")
    bp.add_argument("--send", action="store_true", help="e-mail the PDF to the protocol's distribution list")
    bp.set_defaults(func=cmd_board_pack)
    add_register_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    lock_down()  # whatever the command writes under the data folder is the owner's alone
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, DbtSetupError, DataFolderOpen, RunDateError) as exc:
        err.print(f"[red]error:[/] {shown(exc)}")
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
            err.print(f"[red]error:[/] {shown(exc)}")
            return 2
        raise


def entry() -> None:
    """The `partnership` command: `main`, then `exit_now`, because tearing down one by one the
    millions of objects a night leaves behind is slow once everything is written and closed
    (docs/benchmarks.md, fixed costs); an exception still ends it the usual way, with its trace."""
    exit_now(main())


def exit_now(code: int) -> None:
    """Run the exit handlers (the kept Chromium is closed, logs flushed), flush the output, and end
    the process with `code`, without module teardown."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

