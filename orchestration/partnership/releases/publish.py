"""Releasing a protocol: the one entry point, `release` (the Dagster assets, the CLI and the tests call it).

For each protocol in force, a physically separate output: scoped (`scope`), fingerprinted and
left as it is when nothing it is computed from changed (`fingerprint`), built in a temporary
folder beside its destination (`build`), audited there against the protocol file by the
independent audit (fail closed), then moved into place with one rename, and recorded in the
hash-chained, signed release log (`log`). A recipient's files hold only what its protocol allows.
A protocol whose latest published folder was changed since is not released again until the
operator has moved that folder aside: it is never published over.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

import orchestration.partnership.releases.build as build
import orchestration.partnership.releases.fingerprint as fp
import orchestration.partnership.releases.log as release_log
from orchestration.partnership.releases import ledger, placement
import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership.ops.testhooks import pause_point
from orchestration.partnership.releases import signing
from orchestration.partnership.releases.audit import audit_release
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.releases.scope import (
    ReleaseBlocked,
    SourceMissing,
    person_level,
    scope_once,
)
from orchestration.partnership.warehouse.connection import connect
from orchestration.partnership.warehouse.files import sha256_file

__all__ = ["ReleaseBlocked", "ReleaseResult", "SourceMissing", "record_report", "release"]


@dataclass
class ReleaseResult:
    """One protocol's outcome: published, unchanged, not_in_force or blocked, where, why, rows per table."""

    protocol_id: str
    status: str
    path: Path | None = None
    reason: str = ""
    row_counts: dict[str, int] = field(default_factory=dict)
    held_for_review: int = 0  # members its placement rule kept from being named (`placement`)


def record_report(reports_dir: Path, release_date: date, result: ReleaseResult, run_id: str | None = None) -> Path:
    """The night's release report: one entry per protocol (status, reason, path, rows), JSON.

    With a `run_id` (the night's), the report holds that run's outcomes only: the first outcome
    of another run on the same date starts it afresh."""
    path = Path(reports_dir) / "releases" / f"{release_date.isoformat()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report = json.loads(path.read_text()) if path.exists() else {}
    if not report or (run_id is not None and report.get("run_id") != run_id):
        report = {"release_date": release_date.isoformat(), "run_id": run_id, "protocols": {}}
    report["protocols"][result.protocol_id] = {"status": result.status, "reason": result.reason,
                                               "path": str(result.path) if result.path else None,
                                               "row_counts": result.row_counts,
                                               "held_for_review": result.held_for_review}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def release(warehouse: Path, releases_dir: Path, protocol: Protocol, release_date: date,
            reports_dir: Path | None = None, run_id: str | None = None) -> ReleaseResult:
    """Build, audit and publish one protocol's release for `release_date`."""
    result = _release(warehouse, releases_dir, protocol, release_date)
    if result.status in ("published", "unchanged") and protocol.level == "identifiable":
        with connect(warehouse) as con:  # the members it could not name, listed for a person to check
            con.begin()
            result.held_for_review = placement.record_review(con, protocol, release_date)
            con.commit()
    if reports_dir is not None:
        record_report(reports_dir, release_date, result, run_id)
    return result


def _release(warehouse: Path, releases_dir: Path, protocol: Protocol, release_date: date) -> ReleaseResult:
    ok, why = protocol.in_force(release_date)
    if not ok:
        with connect(warehouse) as con:
            release_log.append(con, protocol, release_date, "not_in_force", None, None, why)
        return ReleaseResult(protocol.id, "not_in_force", reason=why)

    of_people = any(person_level(o) for o in protocol.outputs)
    root = Path(releases_dir).parent  # the data folder: the log records release folders relative to it
    try:
        with connect(warehouse, read_only=True) as con:
            key = _checked_key(con) if of_people else None
            scoped = scope_once(con, protocol, key)
            fingerprint, parts = fp.input_fingerprint(con, protocol, key, scoped)
            cur = fp.current_release(con, protocol.id, root)
            edited = fp.changed_since_published(con, protocol.id, root)
            anchor = release_log.head(con)  # the log's head as this release is built: recorded in its manifest
            secret = key if key is not None else ps.load_key()  # what the manifest is signed with
            why_computed = ""  # why a release whose inputs are unchanged is computed all the same
            unchanged, held = False, None
            if cur is not None and cur.input_sha256 == fingerprint:
                why_computed = fp.intact(cur, protocol, releases_dir, release_date) or ""
                unchanged = not why_computed
            elif cur is not None:  # are the figures it would send all held, as sent?
                held = fp.held_as_sent(con, protocol, cur, parts, releases_dir, release_date)
                unchanged = held is not None
            if not unchanged:
                figures: list[pl.DataFrame] = []
                tables = build.build_tables(con, protocol, key, scoped, figures)
                lineage = build.lineage(con, protocol)
                quality = build.data_quality_facts(con, protocol, release_date) if protocol.level == "aggregate" else None
        if edited:
            raise ReleaseBlocked(
                f"the published folder {edited[0]} was changed after publication ({edited[1]}); nothing was published "
                f"over it. Keep it as evidence: move it out of {releases_dir}, run `partnership audit verify`, "
                "then run again")
        if unchanged:
            return _unchanged(warehouse, protocol, release_date, cur, fingerprint, parts, root, held=held)
    except ReleaseBlocked as exc:  # SourceMissing, or a published folder edited since
        with connect(warehouse) as con:
            release_log.append(con, protocol, release_date, "blocked", None, None, str(exc))
        if isinstance(exc, SourceMissing):
            return ReleaseResult(protocol.id, "blocked", reason=str(exc))
        raise

    final = releases_dir / protocol.id / release_date.isoformat()
    logged = fp.logged_path(final, root)
    tmp = final.with_name(f".building-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        manifest = build.write_folder(tmp, protocol, tables, lineage, quality, release_date, anchor, secret)
        content = manifest["content_sha256"]

        pending = figures[0] if figures else None
        problems = audit_release(tmp, protocol, warehouse=warehouse, releases_dir=releases_dir, key=key, pending=pending)
        if problems:
            raise ReleaseBlocked("; ".join(problems))

        pause_point("release:before_publish")  # crash tests only; inert otherwise
        if cur is not None and cur.content == content and fp.intact(cur, protocol, releases_dir, release_date) is None:
            # the figures computed are the ones the recipient already holds, in a folder still as published:
            # that folder stays the current release (a new dated copy would only repeat it, its pack too)
            shutil.rmtree(tmp)
            return _unchanged(warehouse, protocol, release_date, cur, fingerprint, parts, root, computed=True)
        with connect(warehouse) as con:
            kept = fp.folder_files(final) if final.exists() and release_log.latest_content(con, protocol.id) == content else None
            if kept is not None:  # the same content, already in place and intact: not written again
                shutil.rmtree(tmp)
                reason = "same content as the latest release" + (f" (computed: {why_computed})" if why_computed else "")
                con.begin()
                seq = release_log.append(con, protocol, release_date, "unchanged", logged, content, reason,
                                         kept["manifest.json"])
                fp.record_inputs(con, seq, protocol.id, release_date, logged, fingerprint, parts, kept)
                con.commit()
                return ReleaseResult(protocol.id, "unchanged", final, row_counts=manifest["row_counts"])
            files = {**manifest["files"], "manifest.json": sha256_file(tmp / "manifest.json"),
                     signing.SIGNATURE_FILE: sha256_file(tmp / signing.SIGNATURE_FILE)}
            if final.exists():  # a second release on the same day replaces the first, never half-way
                old = final.with_name(f".replaced-{final.name}-{os.getpid()}")
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old)
            else:
                os.replace(tmp, final)
            con.begin()
            seq = release_log.append(con, protocol, release_date, "published", logged, content, "",
                                     files["manifest.json"])
            fp.record_inputs(con, seq, protocol.id, release_date, logged, fingerprint, parts, files)
            if pending is not None:  # what the recipient now holds, in the same transaction as the log entry
                ledger.record(con, protocol.recipient_id, protocol.id, seq, release_date, pending)
            con.commit()
        return ReleaseResult(protocol.id, "published", final, row_counts=manifest["row_counts"])
    except ReleaseBlocked as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        with connect(warehouse) as con:
            release_log.append(con, protocol, release_date, "blocked", None, None, str(exc))
        raise
    except (OSError, duckdb.Error, pl.exceptions.PolarsError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _disk_full(exc):
            raise
        reason = (f"no space left on the device while writing the release under {releases_dir}; nothing was "
                  "published and the previous release stays as it was. Free space, then run again.")
        try:
            with connect(warehouse) as con:
                release_log.append(con, protocol, release_date, "blocked", None, None, reason)
        except (OSError, duckdb.Error):
            pass  # the warehouse may share the full disk: the error below still says what happened
        raise ReleaseBlocked(reason) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unchanged(warehouse: Path, protocol: Protocol, release_date: date, cur: fp.Current, fingerprint: str,
               parts: dict, root: Path, computed: bool = False, held: str | None = None) -> ReleaseResult:
    """Log the current release as tonight's, unchanged: its inputs are the ones it was computed from,
    or differ only in counts behind figures sent again as first sent (`held`: why; not computed
    either way), or (`computed`) the release computed and audited tonight has its content; its files
    are intact in every case."""
    manifest = json.loads((cur.path / "manifest.json").read_text())
    with connect(warehouse) as con:
        if held:
            reason = f"{held}; files intact; not recomputed"
        elif computed:
            moved = fp.changed_parts(con, cur.seq, parts)
            reason = (f"same content as the release of {cur.release_date.isoformat()}, computed and audited again "
                      f"({', '.join(moved) or 'inputs'} changed); files intact; that release stays current")
        else:
            reason = (f"inputs unchanged since the release of {cur.release_date.isoformat()} (input sha256 {fingerprint[:12]}); "
                      "files intact; not recomputed")
        con.begin()
        logged = fp.logged_path(cur.path, root)
        seq = release_log.append(con, protocol, release_date, "unchanged", logged, cur.content, reason,
                                 cur.files.get("manifest.json"))
        fp.record_inputs(con, seq, protocol.id, cur.release_date, logged, fingerprint, parts, cur.files)
        con.commit()
    return ReleaseResult(protocol.id, "unchanged", cur.path, reason=reason, row_counts=manifest.get("row_counts", {}))


def _disk_full(exc: BaseException) -> bool:
    """The device is full, as the OS (ENOSPC, EDQUOT), DuckDB or polars says it."""
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) \
        or "no space left on device" in str(exc).lower()


def _checked_key(con: duckdb.DuckDBPyConnection) -> bytes:
    """The pseudonymisation key, only if it is the one the warehouse (open on `con`) was built with:
    a changed key would silently give every recipient new pseudonyms, breaking their linkage between releases."""
    return ps.checked_key(con, consequence="no release was built. Restore the key (docs/linkage.md).")
