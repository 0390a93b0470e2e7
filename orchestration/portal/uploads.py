"""A data owner's corrected file: checked by the same engine as `partnership check`
(`validation.engine.assess`, as validation/check.py calls it) and placed in the landing folder
only if it would be accepted, under its own name, never over another file. The night then
registers it as a new delivery.

Whether the same bytes were already accepted (a duplicate is rejected) is read from the ops
snapshot, not the warehouse: the portal never opens the warehouse (partnership/ops/snapshot.py)."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.settings import Settings
from orchestration.partnership.validation.engine import Assessment, assess
from orchestration.partnership.warehouse.files import sha256_file
from orchestration.portal.data.ops import OpsSnapshot
from orchestration.portal.models import Upload
from orchestration.portal.policies import may_place, upload_name_problem


def check_and_place(settings: Settings, contract: Contract, name: str, source: Path, user) -> tuple[Upload, Assessment | None]:
    """Check the file at `source` (uploaded as `name`); place it if accepted. The Upload record
    says what happened; the assessment is None when the file was refused before the check."""
    staging_root = settings.data_dir / "portal" / "uploads"
    staging_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = Upload(agency=contract.agency, contract_id=contract.id, original_name=name[:300],
                    sha256=sha256_file(source), size_bytes=source.stat().st_size, user=user)
    problem = upload_name_problem(name, contract)
    if problem:
        record.status, record.reason = "refused", problem
        record.save()
        return record, None
    staging = Path(tempfile.mkdtemp(dir=staging_root))
    try:
        staged = staging / name
        shutil.copyfile(source, staged)
        digest = sha256_file(staged)
        assessment = assess(staged, contract, file_name=name, sha256=digest,
                            arrived_at=datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0),
                            duplicate_of=OpsSnapshot(settings).accepted_duplicate(contract.id, digest))
        if not may_place(assessment.status):
            record.status, record.reason = "refused", assessment.reason or "the contract check rejected the file"
        else:
            dest = settings.landing_dir / contract.agency / contract.extract / name
            try:
                _place(staged, dest)
            except FileExistsError:
                record.status = "refused"
                record.reason = "a file of that name is already in the landing folder: rename the corrected file"
            else:
                record.status, record.landing_name = "placed", name
        record.save()
        return record, assessment
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _place(staged: Path, dest: Path) -> None:
    """Put the file at `dest` whole or not at all, and never over an existing file: a hard link is
    both (it fails if `dest` exists); across file systems, an exclusive create and a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(staged, dest)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "wb") as out, open(staged, "rb") as src:
        shutil.copyfileobj(src, out)


def refresh_statuses(uploads: list[Upload], delivered: dict[str, int]) -> None:
    """Mark placed uploads whose bytes the night has registered (by sha256) as registered."""
    for u in uploads:
        if u.status == "placed" and u.sha256 in delivered:
            u.status = "registered"
            u.save(update_fields=["status"])
