"""A delivery's rows are written while its batch suite runs; the suite's verdict still decides
what stays: a batch rule of error severity leaves nothing of the delivery but its rejection."""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timezone

import duckdb

import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.ingest.deliveries import (
    _ensure_tables,
    pending,
    process_delivery,
    register,
)
from orchestration.partnership.settings import PROJECT_ROOT
from orchestration.partnership.warehouse.connection import ensure_schemas

KEY = b"k" * 40


def _nhs(n: int) -> str:
    """The n-th ten-digit number (from 4000000000) with a valid modulus-11 check digit."""
    base = 400000000
    while True:
        digits = str(base)
        check = (11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11) % 11
        if check != 10:
            if n == 0:
                return digits + str(check)
            n -= 1
        base += 1


def test_a_batch_rule_of_error_severity_rejects_the_delivery_and_none_of_its_written_rows_stay(tmp_path):
    contract = dataclasses.replace(load_contracts(PROJECT_ROOT / "contracts" / "agencies")["nhs_optout__opt_outs"],
                                   row_count_max=3)
    folder = tmp_path / "landing" / contract.agency / contract.extract
    folder.mkdir(parents=True)
    files = {"opt_outs_20261001.csv": [_nhs(i) for i in range(5)],  # valid rows, one too many for the batch rule
             "opt_outs_20261101.csv": [_nhs(10), "123", _nhs(11)]}  # within it; one row quarantined
    for name, values in files.items():
        (folder / name).write_text("nhs_number\n" + "\n".join(values) + "\n")
        day = datetime.strptime(name[9:17], "%Y%m%d").replace(hour=1, tzinfo=timezone.utc).timestamp()
        os.utime(folder / name, (day, day))
    now = datetime(2026, 11, 2)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        ensure_schemas(con)
        _ensure_tables(con, contract)
        register(con, tmp_path / "landing", {contract.id: contract}, now)
        results = [process_delivery(con, tmp_path / "landing", tmp_path / "archive", contract, d, ps.hmac_pads(KEY), now)
                   for d in pending(con, contract.id)]
        statuses = con.execute("select file_name, status, reason_code, reason, rows_read from ops.deliveries "
                               "order by delivery_id").fetchall()
        loaded = {s: con.execute(f"select _delivery_id, count(*) from {s}.{contract.table} group by 1 order by 1").fetchall()
                  for s in ("raw", "valid", "quarantine", "identity")}
        # identity keeps the value, valid its pseudonym, under the same delivery and row
        pseudonyms = con.execute(f"""select i.nhs_number, v.nhs_number_pseudo from identity.{contract.table} i
                                     join valid.{contract.table} v using (_delivery_id, _row_number)""").fetchall()
    finally:
        con.close()
    first, second = results
    assert (first.status, first.reason_code) == ("rejected", "row_count")
    assert first.rows_read == 5, "the rows were read and judged (and written, then rolled back)"
    (n1, s1, c1, r1, read1), (n2, s2, c2, r2, read2) = statuses
    assert (n1, s1, c1, read1) == ("opt_outs_20261001.csv", "rejected", "row_count", None)
    assert r1 == first.reason and "batch rule row_count failed: 5 rows" in r1 and "1 to 3 rows" in r1
    assert (n2, s2, c2, read2) == ("opt_outs_20261101.csv", "accepted", None, 3)
    # Only the accepted delivery (id 2) has rows anywhere; the rejected one left none behind.
    assert loaded == {"raw": [(2, 3)], "valid": [(2, 2)], "quarantine": [(2, 1)], "identity": [(2, 2)]}
    assert sorted(pseudonyms) == sorted((v, ps.hmac_python(KEY, v)) for v in (_nhs(10), _nhs(11)))


def test_each_delivery_reports_where_its_time_went_and_the_night_records_it(tmp_path, demo_night):
    """Phase timings (archive, validate, write, batch suite wait, commit): what the benchmark's
    contract-validation figure is made of, and what the UI shows for an ingest step."""
    import time

    import dagster as dg

    contract = dataclasses.replace(load_contracts(PROJECT_ROOT / "contracts" / "agencies")["nhs_optout__opt_outs"],
                                   row_count_min=1)  # two rows are enough here
    folder = tmp_path / "landing" / contract.agency / contract.extract
    folder.mkdir(parents=True)
    (folder / "opt_outs_20261101.csv").write_text("nhs_number\n" + "\n".join(_nhs(i) for i in range(50)) + "\n")
    day = datetime(2026, 11, 1, 1, tzinfo=timezone.utc).timestamp()  # arrived on time
    os.utime(folder / "opt_outs_20261101.csv", (day, day))
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        ensure_schemas(con)
        _ensure_tables(con, contract)
        register(con, tmp_path / "landing", {contract.id: contract}, datetime(2026, 11, 2))
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        (d,) = pending(con, contract.id)
        a = process_delivery(con, tmp_path / "landing", tmp_path / "archive", contract, d, ps.hmac_pads(KEY),
                             datetime(2026, 11, 2), seconds=seconds)
        wall = time.perf_counter() - t
    finally:
        con.close()
    assert a.accepted
    assert set(seconds) == {"archive", "validate", "write", "batch suite wait", "commit"}
    assert all(v >= 0 for v in seconds.values()) and sum(seconds.values()) <= wall
    # The night's ingest steps carry the same phases, plus reports and Data Docs, in their metadata.
    settings, result = demo_night
    mats = [e.dagster_event.event_specific_data.materialization
            for e in dg.DagsterInstance.get().all_logs(result.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"]
    per = {m.asset_key.path[-1]: m.metadata["seconds"].data for m in mats if m.asset_key.path[0] == "valid"}
    assert len(per) == len(load_contracts(settings.contracts_dir))
    for phases in per.values():
        assert {"reports", "data docs wait"} <= set(phases)
    assert any({"archive", "validate", "write", "batch suite wait", "commit"} <= set(p) for p in per.values())


def test_an_identity_table_holding_pseudonyms_beside_its_values_loses_them_once_and_keeps_its_rows(tmp_path):
    """A warehouse whose `identity` tables still hold each identifier's pseudonym (as it once did)
    keeps working: the pseudonym columns are dropped, the values delivered stay, and each row's
    pseudonym is found in `valid` under the same delivery and row."""
    contract = dataclasses.replace(load_contracts(PROJECT_ROOT / "contracts" / "agencies")["nhs_optout__opt_outs"],
                                   row_count_min=1)  # two rows are enough here
    folder = tmp_path / "landing" / contract.agency / contract.extract
    folder.mkdir(parents=True)
    (folder / "opt_outs_20261101.csv").write_text(f"nhs_number\n{_nhs(20)}\n{_nhs(21)}\n")
    day = datetime(2026, 11, 1, 1, tzinfo=timezone.utc).timestamp()  # arrived on time
    os.utime(folder / "opt_outs_20261101.csv", (day, day))
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        ensure_schemas(con)
        con.execute(f"""create table identity.{contract.table} (_delivery_id bigint, _row_number bigint,
                                                               nhs_number varchar, nhs_number_pseudo varchar)""")
        con.execute(f"insert into identity.{contract.table} values (900, 1, ?, 'stored beside it')", [_nhs(7)])
        columns = lambda: [r[0] for r in con.execute(f"describe identity.{contract.table}").fetchall()]  # noqa: E731
        _ensure_tables(con, contract)
        assert columns() == ["_delivery_id", "_row_number", "nhs_number"]
        _ensure_tables(con, contract)  # once: a second pass finds nothing to drop
        assert columns() == ["_delivery_id", "_row_number", "nhs_number"]
        register(con, tmp_path / "landing", {contract.id: contract}, datetime(2026, 11, 2))
        [delivery] = pending(con, contract.id)
        result = process_delivery(con, tmp_path / "landing", tmp_path / "archive", contract, delivery,
                                  ps.hmac_pads(KEY), datetime(2026, 11, 2))
        held = con.execute(f"select _delivery_id, nhs_number from identity.{contract.table} order by 1, 2").fetchall()
        joined = con.execute(f"""select i.nhs_number, v.nhs_number_pseudo from identity.{contract.table} i
                                 join valid.{contract.table} v using (_delivery_id, _row_number)""").fetchall()
    finally:
        con.close()
    assert result.status == "accepted", result.reason
    did = delivery["delivery_id"]
    assert held == [(did, _nhs(20)), (did, _nhs(21)), (900, _nhs(7))]
    assert sorted(joined) == sorted((v, ps.hmac_python(KEY, v)) for v in (_nhs(20), _nhs(21)))
