"""`partnership check FILE --contract ID`: the nightly engine, run on a file before it is sent.

Same engine (engine.assess: readers, pandera row rules, the GX batch suite), no warehouse
writes. If the warehouse exists it is opened read-only, only to tell whether the same bytes
were already accepted (a duplicate would be rejected).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.settings import Settings
from orchestration.partnership.validation.engine import Assessment, assess
from orchestration.partnership.warehouse.connection import table_exists
from orchestration.partnership.warehouse.files import sha256_file


def accepted_duplicate(settings: Settings, contract: Contract, digest: str) -> int | None:
    if not settings.warehouse_path.exists():
        return None
    import duckdb

    try:
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    except duckdb.Error:
        return None  # the night holds the file; a duplicate is then found when the file is delivered
    try:
        if not table_exists(con, "ops", "deliveries"):
            return None
        return con.execute("select min(delivery_id) from ops.deliveries where contract_id = ? and sha256 = ? and status = 'accepted'",
                           [contract.id, digest]).fetchall()[0][0]
    finally:
        con.close()


def check_file(path: Path, contract: Contract, settings: Settings, arrived_at: datetime | None = None) -> Assessment:
    path = Path(path)
    digest = sha256_file(path)
    when = arrived_at or datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    return assess(path, contract, file_name=path.name, sha256=digest, arrived_at=when,
                  duplicate_of=accepted_duplicate(settings, contract, digest))


def as_json(a: Assessment) -> str:
    return json.dumps(a.to_dict(), indent=2, sort_keys=True, default=str)
