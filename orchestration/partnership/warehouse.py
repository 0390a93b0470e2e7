"""The secure-zone warehouse: one DuckDB file, one writer at a time.

Connections are opened per operation and closed at once, so that the next step (or dbt)
can open the file: DuckDB allows one writing process per file.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

SCHEMAS = ("ops", "raw", "quarantine", "valid", "identity")

OPS_DDL = """
create sequence if not exists ops.delivery_id_seq start 1;
create table if not exists ops.deliveries (
    delivery_id bigint primary key,
    contract_id varchar,
    agency varchar,
    extract varchar,
    file_name varchar not null,
    landing_path varchar not null,
    sha256 varchar not null,
    size_bytes bigint not null,
    arrived_at timestamp not null,
    registered_at timestamp not null,
    status varchar not null,            -- registered | accepted | rejected
    reason_code varchar,                -- the rule kind that rejected the whole delivery
    reason varchar,                     -- a message safe to show the data owner
    contract_version varchar,
    rows_read bigint,
    rows_valid bigint,
    rows_quarantined bigint,
    rule_counts json,                   -- rows failing each row rule
    warnings json,                      -- batch rules at warning severity
    archive_path varchar,
    processed_at timestamp
);
create table if not exists ops.settings (name varchar primary key, value varchar not null);
"""


class WarehouseLocked(RuntimeError):
    pass


@contextmanager
def connect(path: Path, read_only: bool = False, retries: int = 20, wait_s: float = 0.5) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open, yield, close. Waits while another process holds the file, then fails clearly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(retries):
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            last = exc
            time.sleep(wait_s)
    else:
        raise WarehouseLocked(f"{path} is in use by another process (waited {retries * wait_s:.0f}s): {last}")
    try:
        yield con
    finally:
        con.close()


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    for schema in SCHEMAS:
        con.execute(f"create schema if not exists {schema}")
    con.execute(OPS_DDL)
