"""The data owners' commands: `partnership check` (a file against its contract before it is sent)
and `partnership contracts lint|diff|sources`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from rich.table import Table

from orchestration.partnership.cli.console import CliError, console, err
from orchestration.partnership.settings import get_settings


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 only if the file would be accepted; 1 if it would be rejected; 2 on a usage error."""
    from datetime import datetime

    from orchestration.partnership import catalogue
    from orchestration.partnership.validation.check import as_json, check_file

    settings = get_settings()
    contracts = catalogue.contracts(settings.contracts_dir)
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


def cmd_contracts_sources(args: argparse.Namespace) -> int:
    from orchestration.partnership import catalogue
    from orchestration.partnership.dbt.sources import write_sources

    settings = get_settings()
    path = write_sources(catalogue.contracts(settings.contracts_dir), settings.dbt_project_dir)
    console.print(f"wrote {path}")
    return 0
