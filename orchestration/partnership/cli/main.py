"""The `partnership` command's parser, `main` (errors as one line, exit code 2) and `entry`
(the console script)."""

from __future__ import annotations

import argparse
import os
import sys

from orchestration.partnership.cli.console import CliError, err
from orchestration.partnership.cli.contracts import (
    cmd_check,
    cmd_contracts_diff,
    cmd_contracts_lint,
    cmd_contracts_sources,
)
from orchestration.partnership.cli.night import cmd_demo, cmd_dev, cmd_generate, cmd_run
from orchestration.partnership.cli.releases import (
    cmd_audit_verify,
    cmd_board_pack,
    cmd_query,
    cmd_releases,
)
from orchestration.partnership.dbt.runner import DbtSetupError


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

