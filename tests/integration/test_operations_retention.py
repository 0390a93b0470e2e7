"""Retention purges exactly what is older than its contract's or protocol's limit, and logs it in ops.

On a copy of the session's demo night (real warehouse, archive, landing and releases); what is
expected is worked out from the files themselves (landing mtimes, protocol YAML), not from
ops.deliveries."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.conftest import _ENV_KEYS, DEMO_RUN_DATE, use_data_dir

pytestmark = pytest.mark.dbt_free

ROW_SCHEMAS = ("raw", "quarantine", "valid", "identity")


@pytest.fixture(scope="module")
def night_copy(demo_night, tmp_path_factory):
    source, _ = demo_night
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    data_dir = tmp_path_factory.mktemp("retention") / "data"
    shutil.copytree(source.data_dir, data_dir, symlinks=True)  # copy2: landing mtimes (arrival times) kept
    settings = use_data_dir(data_dir)
    yield settings
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _counts(settings) -> dict:
    """Rows per (table, delivery id), read straight from the warehouse."""
    out = {}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        for schema in ROW_SCHEMAS:
            for (table,) in con.execute("select table_name from information_schema.columns where table_schema = ? "
                                        "and column_name = '_delivery_id'", [schema]).fetchall():
                for did, n in con.execute(f'select _delivery_id, count(*) from {schema}."{table}" group by 1').fetchall():
                    out[(f"{schema}.{table}", did)] = n
    return out


def _landing_arrivals(settings) -> dict[str, date]:
    """Each delivered file's arrival date, from the landing area itself (its mtime, UTC)."""
    from orchestration.partnership.contracts.model import load_contracts

    contracts = load_contracts(settings.contracts_dir)
    out = {}
    for path in settings.landing_dir.rglob("*"):
        rel = path.relative_to(settings.landing_dir)
        if path.is_file() and len(rel.parts) == 3 and f"{rel.parts[0]}__{rel.parts[1]}" in contracts:
            out[rel.as_posix()] = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).date()
    return out


def test_releases_older_than_their_protocol_allows_are_purged_and_logged(night_copy):
    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.ops.retention import purge
    from orchestration.partnership.releases.publish import release
    from orchestration.partnership.releases.protocols import load_protocols

    settings = night_copy
    protocols = load_protocols(settings.protocols_dir)
    falls = protocols["falls-board"]
    for d in (date(2026, 10, 27), date(2026, 11, 27)):  # two earlier releases, built by the real engine
        release(settings.warehouse_path, settings.releases_dir, falls, d)
    limits = {p.stem: yaml.safe_load(p.read_text())["retention"]["recipient_copy_days"]
              for p in settings.protocols_dir.glob("*.yaml")}
    today = date(2026, 11, 27) + timedelta(days=limits["falls-board"])  # 27 Nov: exactly at the limit, kept
    folders = sorted(p for p in settings.releases_dir.glob("*/*") if p.is_dir() and not p.name.startswith("."))
    expected = {(p.parent.name, p.name) for p in folders if (today - date.fromisoformat(p.name)).days > limits[p.parent.name]}
    assert ("falls-board", "2026-10-27") in expected and ("falls-board", "2026-11-27") not in expected
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        chain_before = con.execute("select * from ops.release_log order by seq").fetchall()
    counts_before = _counts(settings)

    summary = purge(settings, load_contracts(settings.contracts_dir), protocols, today)

    assert {(r["protocol_id"], r["release_date"]) for r in summary.releases} == expected
    remaining = {(p.parent.name, p.name) for p in settings.releases_dir.glob("*/*") if p.is_dir() and not p.name.startswith(".")}
    assert remaining == {(p.parent.name, p.name) for p in folders} - expected
    assert summary.deliveries == [] and _counts(settings) == counts_before  # no delivery is that old
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        logged = con.execute("select subject, dated, age_days, retention_days from ops.retention_log "
                             "where kind = 'release' order by 1, 2").fetchall()
        chain_after = con.execute("select * from ops.release_log order by seq").fetchall()
    assert {(s, d.isoformat()) for s, d, _, _ in logged} == expected
    assert all(age > limit for _, _, age, limit in logged)
    assert chain_after == chain_before  # the release log is append-only: retention never rewrites it


def test_deliveries_older_than_their_contract_allows_are_purged_whole_rows_and_files(night_copy):
    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.ops.retention import purge
    from orchestration.partnership.releases.protocols import load_protocols

    settings = night_copy
    contracts = load_contracts(settings.contracts_dir)
    arrivals = _landing_arrivals(settings)
    limit = {c.retention_days for c in contracts.values()}
    assert len(limit) == 1  # every demo contract keeps deliveries for the same time
    limit = limit.pop()
    # "Today" such that the deliveries of 1 Oct are exactly at the limit (kept) and older ones are purged.
    today = date(2026, 10, 1) + timedelta(days=limit)
    expected = {rel for rel, arrived in arrivals.items() if (today - arrived).days > limit}
    kept = set(arrivals) - expected
    assert expected and any(arrivals[r] == date(2026, 10, 1) for r in kept)

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        info = {r[0]: r[1:] for r in con.execute(
            "select landing_path, delivery_id, archive_path, agency, file_name, rows_read, rows_valid, rows_quarantined "
            "from ops.deliveries where contract_id is not null").fetchall()}
    counts_before = _counts(settings)
    protocols = load_protocols(settings.protocols_dir)

    dry = purge(settings, contracts, protocols, today, dry_run=True)
    assert {d["landing_path"] for d in dry.deliveries} == expected
    assert _counts(settings) == counts_before  # a dry run changes nothing

    os.environ["PARTNERSHIP_RUN_DATE"] = today.isoformat()  # the retention job judges as of the run date
    try:
        from orchestration.definitions import defs

        result = defs.resolve_job_def("retention").execute_in_process()
    finally:
        os.environ["PARTNERSHIP_RUN_DATE"] = DEMO_RUN_DATE.isoformat()
    assert result.success

    purged_ids = {info[rel][0] for rel in expected}
    counts_after = _counts(settings)
    assert not any(did in purged_ids for _, did in counts_after)  # no row of a purged delivery is left
    assert counts_after == {k: v for k, v in counts_before.items() if k[1] not in purged_ids}  # nothing else touched
    for rel in expected:
        did, archive, agency, name, *_ = info[rel]
        assert not (settings.landing_dir / rel).exists() and not Path(archive).exists()
        assert not any((settings.reports_dir / "contracts" / agency).glob(f"{did}_*"))
    for rel in kept:
        assert (settings.landing_dir / rel).exists() and Path(info[rel][1]).exists()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        logged = con.execute("select delivery_id, age_days, retention_days, rows_purged, files_removed from ops.retention_log "
                             "where kind = 'delivery'").fetchall()
        marked = {r[0] for r in con.execute("select delivery_id from ops.deliveries where purged_at is not null").fetchall()}
    assert {r[0] for r in logged} == purged_ids == marked
    for did, age, lim, rows, files in logged:
        rel = next(r for r in expected if info[r][0] == did)
        assert age > lim == limit
        rows = json.loads(rows)
        _, _, _, _, read, valid, quarantined = info[rel]
        assert sum(v for k, v in rows.items() if k.startswith("raw.")) == read
        assert sum(v for k, v in rows.items() if k.startswith("valid.")) == valid
        assert sum(v for k, v in rows.items() if k.startswith("quarantine.")) == quarantined
        assert str(settings.landing_dir / rel) in json.loads(files)

    again = purge(settings, contracts, protocols, today)  # nothing left to purge: nothing happens
    assert again.deliveries == [] and again.files_removed == 0
