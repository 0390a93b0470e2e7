"""The steps of a night, as plain functions: the Dagster assets call these, so does the CLI."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.ingest.deliveries import (
    PhaseClock,
    _ensure_tables,
    pending,
    process_delivery,
    register,
)
from orchestration.partnership.ingest.holdback import standing_rejections
from orchestration.partnership.ingest.notify import notify_owner
from orchestration.partnership.ingest.reports import (
    report_stem,
    write_agency_index,
    write_delivery_report,
)
from orchestration.partnership.settings import Settings
from orchestration.partnership.validation.batch import start_docs
from orchestration.partnership.warehouse.connection import (
    WarehouseLocked,
    connect,
    ensure_schemas,
)
from orchestration.partnership.warehouse.permissions import require_private

log = logging.getLogger(__name__)

# How much write-ahead log the ingest step's connection gathers before DuckDB checkpoints it into
# the file (DuckDB's own default is 16MB). A delivery smaller than a row group (122,880 rows)
# appended to a table that already holds rows is committed through the log; at 16MB every such
# commit checkpointed, rewriting each table's last, partly filled row group, so a step of many
# small deliveries rewrote the same row groups again and again (docs/operations.md). The
# step checkpoints once at its end instead; the log it gathers meanwhile is bounded by this size.
INGEST_CHECKPOINT_THRESHOLD = "1GB"


@dataclass
class ExtractOutcome:
    contract_id: str
    accepted: int = 0
    rejected: int = 0
    rows_read: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rejections: list[str] | None = None
    warnings: list[str] | None = None
    notices: list[str] | None = None
    # Wall time per phase over the extract's deliveries (archive, validate, write, batch suite
    # wait, commit, reports, data docs wait): where an ingest step's time goes.
    seconds: dict[str, float] = field(default_factory=dict)
    standing: list[str] = field(default_factory=list)  # rejections standing after this step (ingest/holdback.py)
    failure: str | None = None  # the step itself failed (not a delivery): what happened, for the operator


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def check_key(settings: Settings) -> tuple[bytes, bytes]:
    """The pseudonymisation pads, after checking the key is the one this warehouse was built with."""
    with connect(settings.warehouse_path) as con:
        return _check_key(con)


def _check_key(con) -> tuple[bytes, bytes]:
    """`check_key` on an open writing connection (a first night records the key's fingerprint)."""
    key = ps.load_key()  # a missing key stops the night before the warehouse is touched
    ensure_schemas(con)
    ps.checked_key(con, key=key, record=True, consequence="pseudonyms would no longer link. "
                   "Restore the key, or rotate it deliberately (docs/linkage.md).")
    return ps.hmac_pads(key)


def register_deliveries(settings: Settings, contracts: dict[str, Contract]) -> list[int]:
    require_private(settings.data_dir)  # a night's first step: nothing lands in a folder others can read
    with connect(settings.warehouse_path) as con:
        ensure_schemas(con)
        for contract in contracts.values():
            _ensure_tables(con, contract)  # every source exists for dbt, even before a first delivery
        return register(con, settings.landing_dir, contracts, _now())


def process_extract(settings: Settings, contract: Contract, pads: tuple[bytes, bytes] | None = None) -> ExtractOutcome:
    """Validate and load every registered delivery of one extract, oldest first. Without `pads`,
    the key is checked (`check_key`) on the same connection. `standing` of the outcome: the
    extract's rejections still standing afterwards (ingest/holdback.py).

    A failure of the step itself (a bug, a full disk) fails this extract only: the delivery
    being loaded is rolled back, it and the later ones stay registered (retried by the next run,
    and holding back what reads the extract meanwhile), and `failure` says what happened. A key
    that is not this warehouse's, or a warehouse held by another process, is every extract's
    problem and is raised."""
    outcome = ExtractOutcome(contract.id, rejections=[], warnings=[], notices=[])
    try:
        _process_extract(settings, contract, pads, outcome)
    except (ps.PseudonymKeyError, WarehouseLocked):
        raise
    except Exception as exc:
        log.exception("ingest step of %s failed", contract.id)
        first = (str(exc).splitlines() or [""])[0][:200]
        outcome.failure = (f"{contract.id}: the ingest step failed ({type(exc).__name__}: {first}); its unprocessed "
                           "deliveries stay registered for the next run, and what reads this extract is held back")
        try:
            with connect(settings.warehouse_path, read_only=True) as con:
                outcome.standing = standing_rejections(con).get(contract.id, [])
        except Exception:  # the warehouse cannot even be read: hold the extract on the failure itself
            outcome.standing = [outcome.failure]
    return outcome


def _process_extract(settings: Settings, contract: Contract, pads: tuple[bytes, bytes] | None,
                     outcome: ExtractOutcome) -> None:
    """`process_extract`'s work, filling `outcome`.

    One connection for the whole step: opening the county warehouse file and closing it (a
    checkpoint after writes) costs a tenth of a second or more each time."""
    require_private(settings.data_dir)  # no identifiable rows into a folder other users can read
    with connect(settings.warehouse_path) as con:
        con.execute(f"set checkpoint_threshold = '{INGEST_CHECKPOINT_THRESHOLD}'")
        if pads is None:
            pads = _check_key(con)
        ensure_schemas(con)
        todo = pending(con, contract.id)
        outcome.notices = []
        docs = None

        def build_docs_next() -> None:  # queued behind the last suite: the worker renders while this process loads
            nonlocal docs
            docs = start_docs(gx_dir(settings))

        for i, delivery in enumerate(todo):
            a = process_delivery(con, settings.landing_dir, settings.archive_dir, contract, delivery, pads, _now(),
                                 docs_dir=gx_dir(settings), suite_started=build_docs_next if i == len(todo) - 1 else None,
                                 seconds=outcome.seconds)
            clock = PhaseClock(outcome.seconds)
            did = delivery["delivery_id"]
            report = settings.reports_dir / "contracts" / contract.agency / f"{report_stem(did, a.file_name)}.html"
            a.notification = notify_owner(contract, a, did, report)
            write_delivery_report(settings.reports_dir, a, contract, did)
            if a.notification != "not needed":
                outcome.notices.append(f"{a.file_name}: notice {a.notification}")
            clock.lap("reports")
        clock = PhaseClock(outcome.seconds)
        if todo:
            (docs or start_docs(gx_dir(settings))).result()
        clock.lap("data docs wait")
        write_agency_index(settings.reports_dir, contract.agency, agency_deliveries(con, contract.agency),
                           agency_name=contract.agency_name)
        clock.lap("reports")
        ids = [d["delivery_id"] for d in todo] or [-1]
        rows = con.execute(
            f"""select status, reason, coalesce(rows_read, 0), coalesce(rows_valid, 0), coalesce(rows_quarantined, 0), warnings
                from ops.deliveries where delivery_id in ({",".join("?" for _ in ids)}) order by delivery_id""",
            ids,
        ).fetchall()
        outcome.standing = standing_rejections(con).get(contract.id, [])
        clock = PhaseClock(outcome.seconds)
        con.execute("checkpoint")  # what closing would do, timed: the step's rows written into the file
        clock.lap("checkpoint")
    for status, reason, read, valid, quarantined, warnings in rows:
        if status == "accepted":
            outcome.accepted += 1
        else:
            outcome.rejected += 1
            outcome.rejections.append(reason)
        outcome.rows_read += read
        outcome.rows_valid += valid
        outcome.rows_quarantined += quarantined
        outcome.warnings += json.loads(warnings or "[]")


def gx_dir(settings: Settings):
    """The Great Expectations project holding every batch validation result and its Data Docs site."""
    return settings.reports_dir / "gx"


def agency_deliveries(con, agency: str) -> list[dict]:
    """One agency's deliveries (and only that agency's), for its report index."""
    cur = con.execute(
        """select delivery_id, agency, extract, file_name, sha256, arrived_at, status, reason_code, reason,
                  rows_read, rows_valid, rows_quarantined, rule_counts, warnings
           from ops.deliveries where agency = ? and contract_id is not null order by arrived_at, delivery_id""",
        [agency],
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]
