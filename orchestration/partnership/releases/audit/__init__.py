"""The independent audit of a built release. Fail closed.

It owns the decision whether a release folder may leave: `audit_release` returns every finding,
and any finding means nothing is published (the findings are the reason reported). It never
imports the release builder (scope, build, fingerprint, publish): it reads the built files
(Parquet, the DuckDB file, the text files) and the protocol file, and, read-only, the secure
zone's reference, linkage and identity tables, and checks every rule of the protocol again its
own way. Only the release log (`releases.log`, verified there) and the protocols are shared with
the builder. A finding never quotes a personal value: it names the table, the column and how
many values broke the rule.

One module per family of checks: `files` (the folder and its manifest), `rows` (columns, row
filters, generalisation), `counts` (disclosure control, recoverable cells), `identifiers`
(identifiers in anything that leaves), `people` (pseudonyms, opt-out, consent), `placement` (a named
household member placed there by a source of identity the protocol lists); `zone` reads
the secure zone for them.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl

from orchestration.partnership.releases.audit import holding as _holding
from orchestration.partnership.releases.audit import verdicts as _verdicts
from orchestration.partnership.releases.audit import zone as _zone
from orchestration.partnership.releases.audit.counts import (
    check_counts,
    recoverable_cells,
)
from orchestration.partnership.releases.audit.files import check_database, check_files
from orchestration.partnership.releases.audit.identifiers import (
    HEX_VALUE,
    check_identifiers,
    columns_holding,
    identifier_findings,
    nhs_check_digit_ok,
    string_values,
)
from orchestration.partnership.releases.audit.people import check_people
from orchestration.partnership.releases.audit.placement import check_placement
from orchestration.partnership.releases.audit.rows import (
    allowed_columns,
    check_columns_and_rows,
)
from orchestration.partnership.releases.audit.zone import Zone, pseudonymiser
from orchestration.partnership.releases.log import (
    verify_log,  # the log's check lives with its writing
)
from orchestration.partnership.releases.protocols import Protocol

__all__ = ["HEX_VALUE", "Zone", "audit_release", "check_no_later_dates", "columns_holding", "forget_read",
           "identifier_findings", "nhs_check_digit_ok", "pseudonymiser", "recoverable_cells", "string_values", "verify_log"]


def audit_release(folder: Path, protocol: Protocol, warehouse: Path | None = None, releases_dir: Path | None = None,
                  key: bytes | None = None, pending: pl.DataFrame | None = None) -> list[str]:
    """Every finding that stops `folder` from leaving; an empty list means it may be published.

    Without `warehouse` only the checks that need nothing but the files run (used on published
    folders, e.g. after a board pack is added); the release engine always passes it, and for an
    aggregate release `pending`, the counts behind its figures (`ledger.figures`), for the attacker
    on the recipient's whole holding (`holding`)."""
    folder = Path(folder)
    problems: list[str] = []
    ok, why = protocol.in_force(date.fromisoformat(json.loads((folder / "manifest.json").read_text())["release_date"])) \
        if (folder / "manifest.json").exists() else (True, "")
    if not ok:
        problems.append(why)
    check_files(folder, protocol, problems)
    if warehouse is None:
        _audit_tables(folder, protocol, None, key, releases_dir, problems)
    else:
        with Zone(Path(warehouse)) as zone:
            _audit_tables(folder, protocol, zone, key, releases_dir, problems)
            if protocol.level == "aggregate":
                problems += _holding.check(folder, protocol, zone.connection, pending, zone.ward_district or None,
                                           _verdicts.path_for(Path(warehouse), protocol.id))[0]
    return problems


def _audit_tables(folder: Path, protocol: Protocol, zone: Zone | None, key: bytes | None,
                  releases_dir: Path | None, problems: list[str]) -> None:
    tables: dict[str, pl.DataFrame] = {}
    for out in protocol.outputs:
        pq = folder / "parquet" / f"{out['table']}.parquet"
        if not pq.exists():
            problems.append(f"{pq.name} missing")
            continue
        df = pl.read_parquet(pq)
        tables[out["table"]] = df
        allowed = allowed_columns(protocol, out)
        if df.columns != allowed:
            problems.append(f"{out['table']}: columns {df.columns} differ from the protocol's {allowed}")
            continue
        check_columns_and_rows(protocol, out, df, zone, problems)
        if protocol.level == "aggregate" and out.get("counts"):
            check_counts(protocol, out, df, problems)
        if protocol.level != "aggregate":
            check_people(protocol, out, df, zone, key, releases_dir, problems)
        if protocol.level == "identifiable":
            check_placement(protocol, out, df, zone, key, problems)
    check_database(folder, protocol, tables, problems)
    check_identifiers(folder, protocol, tables, zone, problems)
    if (folder / "manifest.json").exists():
        check_no_later_dates(tables, date.fromisoformat(json.loads((folder / "manifest.json").read_text())["release_date"]),
                             problems)


def check_no_later_dates(tables: dict[str, pl.DataFrame], release_date: date, problems: list[str]) -> None:
    """A release holds nothing dated after its release date (a back-dated night would date a release
    before data it holds). Every date column counts but a period's end (`*_end`): a period under way
    on the release date ends after it."""
    for name, df in tables.items():
        for col, dtype in df.schema.items():
            if col.endswith("_end") or dtype not in (pl.Date, pl.Datetime):
                continue
            latest = df[col].max()
            if latest is not None and dtype == pl.Datetime:
                latest = latest.date()
            if latest is not None and latest > release_date:
                problems.append(f"{name}.{col}: holds dates up to {latest.isoformat()}, after the release date "
                                f"{release_date.isoformat()}")


def forget_read() -> None:
    """Forget what this process kept between audits (the identity schema's names): the next audit
    reads them again, as after any change to their rows. The protocols are the catalogue's, read
    again whenever their files change."""
    _zone.forget_read()
