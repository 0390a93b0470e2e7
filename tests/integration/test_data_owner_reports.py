"""Data owners: per-delivery reports, agency indexes and e-mail notices, each about one agency only."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from datetime import datetime, timezone

import duckdb
import polars as pl
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import DEMO_AS_OF, use_data_dir

pytestmark = pytest.mark.dbt_free

SMTP_ENV = ("PARTNERSHIP_SMTP_HOST", "PARTNERSHIP_SMTP_PORT", "PARTNERSHIP_SMTP_FROM")


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    saved = {k: os.environ.get(k) for k in SMTP_ENV}
    os.environ.update(PARTNERSHIP_SMTP_HOST="127.0.0.1", PARTNERSHIP_SMTP_PORT=str(controller.port),
                      PARTNERSHIP_SMTP_FROM="warehouse@partnership.example")
    yield inbox
    controller.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _land(src_root, dst_root, agency, extract, name, arrived: datetime):
    dst = dst_root / agency / extract / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src_root / agency / extract / name, dst)
    ts = arrived.replace(tzinfo=timezone.utc).timestamp()
    os.utime(dst, (ts, ts))


def test_a_late_delivery_is_rejected_or_warned_as_its_contract_says_and_each_owner_hears_only_of_their_own(
        tmp_path_factory, saved_environment, smtp_server):
    from orchestration.partnership.contracts.model import load_contracts
    from orchestration.partnership.demo import generate
    from orchestration.partnership.ingest.night import (
        check_key,
        process_extract,
        register_deliveries,
    )

    source = tmp_path_factory.mktemp("source")
    generate(source, preset="small", seed=42, as_of=DEMO_AS_OF)
    data = tmp_path_factory.mktemp("late")
    settings = use_data_dir(data)
    late = datetime(2026, 11, 27, 9, 15)  # both files were due by 2026-11-27 06:00 UTC
    _land(source / "landing", settings.landing_dir, "riverside_acute", "emergency_admissions", "emergency_admissions_20261126.csv", late)
    _land(source / "landing", settings.landing_dir, "county_ambulance", "incidents", "incidents_20261126.csv", late)
    contracts = load_contracts(settings.contracts_dir)
    register_deliveries(settings, contracts)
    pads = check_key(settings)
    acute = process_extract(settings, contracts["riverside_acute__emergency_admissions"], pads)
    ambulance = process_extract(settings, contracts["county_ambulance__incidents"], pads)

    assert (acute.accepted, acute.rejected) == (0, 1) and "rejects late deliveries" in acute.rejections[0]
    assert (ambulance.accepted, ambulance.rejected) == (1, 0) and any(w.startswith("late") for w in ambulance.warnings)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        statuses = dict(con.execute("select contract_id, status || ':' || coalesce(reason_code, '') from ops.deliveries").fetchall())
        assert con.execute('select count(*) from raw."riverside_acute__emergency_admissions"').fetchall()[0][0] == 0
    assert statuses == {"riverside_acute__emergency_admissions": "rejected:late", "county_ambulance__incidents": "accepted:"}

    by_owner = {tuple(rcpt): body for rcpt, body in smtp_server.messages}
    assert set(by_owner) == {(contracts["riverside_acute__emergency_admissions"].owner_email,),
                             (contracts["county_ambulance__incidents"].owner_email,)}
    acute_mail = by_owner[(contracts["riverside_acute__emergency_admissions"].owner_email,)]
    amb_mail = by_owner[(contracts["county_ambulance__incidents"].owner_email,)]
    assert "emergency_admissions_20261126.csv" in acute_mail and "rejected" in acute_mail
    assert "incidents_20261126.csv" in amb_mail and "late" in amb_mail
    assert "ambulance" not in acute_mail.lower() and "acute" not in amb_mail.lower()

    acute_dir = settings.reports_dir / "contracts" / "riverside_acute"
    report = json.loads(next(acute_dir.glob("*_emergency_admissions_20261126.csv.json")).read_text())
    assert report["status"] == "rejected" and report["reason_code"] == "late" and report["late"]
    assert report["notification"].startswith("sent to ")
    index = (acute_dir / "index.html").read_text()
    assert "emergency_admissions_20261126.csv" in index and "late" in index and "incidents_20261126" not in index


@pytest.fixture(scope="module")
def night(demo_night):
    settings, result = demo_night
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        cur = con.execute("select * from ops.deliveries where contract_id is not null order by delivery_id")
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    return settings, rows


def test_the_planted_late_delivery_is_accepted_with_a_late_warning_and_shows_late_in_the_reports(night):
    settings, rows = night
    truth = pl.read_parquet(settings.truth_dir / "deliveries.parquet")
    planted = truth.filter(pl.col("planted_late"))
    assert planted.height == 1
    name = planted["file_name"][0]
    (d,) = [r for r in rows if r["contract_id"] == "county_ambulance__incidents" and r["file_name"] == name]
    assert d["status"] == "accepted" and any(w.startswith("late") for w in json.loads(d["warnings"]))
    on_time = [r for r in rows if r["file_name"] != name or r["agency"] != "county_ambulance"]
    assert not any(w.startswith("late") for r in on_time for w in json.loads(r["warnings"] or "[]"))
    folder = settings.reports_dir / "contracts" / "county_ambulance"
    report = json.loads((folder / f"{d['delivery_id']}_{name}.json").read_text())
    assert report["late"] and [r["passed"] for r in report["rules"] if r["rule"] == "late"] == [False]
    index = json.loads((folder / "index.json").read_text())
    assert [x["late"] for x in index["deliveries"] if x["file_name"] == name] == [True]


def test_every_delivery_has_a_report_whose_rule_counts_and_hash_match_the_warehouse(night):
    settings, rows = night
    for d in rows:
        path = settings.reports_dir / "contracts" / d["agency"] / f"{d['delivery_id']}_{d['file_name']}.json"
        report = json.loads(path.read_text())
        assert report["sha256"] == d["sha256"] and report["status"] == d["status"]
        assert (settings.reports_dir / "contracts" / d["agency"] / f"{d['delivery_id']}_{d['file_name']}.html").exists()
        if d["status"] == "accepted":
            assert report["rows_read"] == report["rows_valid"] + report["rows_quarantined"] == d["rows_read"]
            failing = {r["rule"]: r["failing_rows"] for r in report["rules"] if r["level"] == "row" and not r["passed"]}
            assert failing == json.loads(d["rule_counts"])


def test_report_examples_never_show_an_identifying_value(night):
    settings, rows = night
    from orchestration.partnership.contracts.model import load_contracts

    contracts = load_contracts(settings.contracts_dir)
    seen = 0
    for path in (settings.reports_dir / "contracts").glob("*/*.json"):
        if path.name == "index.json":
            continue
        report = json.loads(path.read_text())
        contract = contracts[report["contract_id"]]
        for rule in report["rules"]:
            for ex in rule["examples"]:
                for col, value in ex["values"].items():
                    if value is not None and contract.column(col).classification != "other":
                        seen += 1
                        assert not re.search(r"[0-8B-Zb-z]", value), (path.name, col)
    assert seen > 0, "no identifying column had a failing example to mask"


def test_an_agency_index_names_only_its_own_deliveries(night):
    settings, rows = night
    agencies = {r["agency"] for r in rows}
    folders = {p.name for p in (settings.reports_dir / "contracts").iterdir() if p.is_dir()}
    assert folders == agencies
    for agency in agencies:
        text = (settings.reports_dir / "contracts" / agency / "index.html").read_text()
        own = {r["file_name"] for r in rows if r["agency"] == agency}
        others = {r["file_name"] for r in rows if r["agency"] != agency} - own
        assert all(name in text for name in own)
        assert not any(name in text for name in others)
        assert not any(other in text for other in agencies - {agency})
        for p in (settings.reports_dir / "contracts" / agency).glob("*.json"):
            assert all(o not in p.read_text() for o in agencies - {agency}), p


def test_the_batch_suite_data_docs_site_is_written_under_reports(night):
    settings, rows = night
    index = settings.reports_dir / "gx" / "data_docs" / "index.html"
    assert index.exists()
    validations = list((settings.reports_dir / "gx" / "data_docs" / "validations").rglob("*.html"))
    assert len(validations) >= len([r for r in rows if r["rows_read"] is not None])
