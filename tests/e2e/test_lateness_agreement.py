"""Late, said once: on every delivery of the demo night, the data owner's reports, the freshness
check and the board pack's data-quality facts agree on which deliveries were late and by how much.

The owner's side is read from the reports the night wrote (each agency's index and each
delivery's report, with its due and arrival times); the freshness side from the night's own
check evaluations and from the freshness assessment over every delivery; the board pack's from
the release's data_quality.json and from the same facts summarised over the whole history."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import pytest

from orchestration.partnership.boardpack.quality import DATA_QUALITY_FILE, summarise
from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.ingest.reports import report_stem
from orchestration.partnership.ops.freshness import LATE_WINDOW_DAYS, assess_freshness, deliveries_by_contract
from orchestration.partnership.releases.protocols import load_protocol
from tests.conftest import DEMO_RUN_DATE

LONDON = ZoneInfo("Europe/London")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.removesuffix("Z"))


def _london_day(arrived: datetime):
    return arrived.replace(tzinfo=timezone.utc).astimezone(LONDON).date()


@pytest.fixture(scope="module")
def night(demo_night):
    """(settings, contracts, every delivery of a known agency with the owner's verdict on its lateness)."""
    settings, result = demo_night
    contracts = load_contracts(settings.contracts_dir)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        cur = con.execute("select delivery_id, contract_id, agency, file_name, status, arrived_at from ops.deliveries "
                          "where contract_id is not null order by delivery_id")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    deliveries = []
    for d in rows:
        folder = settings.reports_dir / "contracts" / d["agency"]
        index = {x["delivery_id"]: x for x in json.loads((folder / "index.json").read_text())["deliveries"]}
        d["owner_late"] = index[d["delivery_id"]]["late"]
        d["owner_minutes"] = None
        if d["owner_late"]:  # the delivery's own report says when it was due
            report = json.loads((folder / f"{report_stem(d['delivery_id'], d['file_name'])}.json").read_text())
            assert report["late"] and _utc(report["arrived_at"]) == d["arrived_at"]
            d["owner_minutes"] = int((_utc(report["arrived_at"]) - _utc(report["due_at"])).total_seconds() // 60)
        deliveries.append(d)
    return settings, result, contracts, deliveries


def test_the_demo_night_has_late_and_on_time_deliveries_to_agree_on(night):
    _, _, _, deliveries = night
    late = [d for d in deliveries if d["owner_late"]]
    assert late and len(late) < len(deliveries)
    assert all(d["owner_minutes"] > 0 for d in late)


def test_the_freshness_assessment_lists_exactly_the_deliveries_the_owner_was_told_were_late(night):
    settings, _, contracts, deliveries = night
    by_contract = deliveries_by_contract(settings)
    earliest = min(d["arrived_at"] for d in deliveries)  # as at the first arrival, every delivery is in its window
    listed = {(cid, x["file"], x["arrived_utc"]): x["minutes_late"]
              for cid, contract in contracts.items()
              for x in assess_freshness(contract, by_contract.get(cid, []), earliest).late}
    owner = {(d["contract_id"], d["file_name"], f"{d['arrived_at']:%Y-%m-%d %H:%M}"): d["owner_minutes"]
             for d in deliveries if d["owner_late"]}
    assert listed == owner


def test_the_nights_freshness_checks_list_the_late_deliveries_of_their_window(night):
    _, result, contracts, deliveries = night
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
                   and e.event_specific_data.check_name == "delivery_freshness"]
    assert len(evaluations) == len(contracts)
    listed = set()
    for ev in evaluations:
        table = ev.metadata["late"].value
        for line in table.splitlines()[2:] if table.startswith("|") else []:
            file, _status, _due, arrived, minutes = (c.strip() for c in line.strip("|").split("|"))
            listed.add((file, arrived, int(minutes)))
    replay_noon = datetime.combine(DEMO_RUN_DATE, time(12), LONDON)  # a replay judges as at noon on its day
    since = replay_noon.astimezone(timezone.utc).replace(tzinfo=None) - timedelta(days=LATE_WINDOW_DAYS)
    owner = {(d["file_name"], f"{d['arrived_at']:%Y-%m-%d %H:%M}", d["owner_minutes"])
             for d in deliveries if d["owner_late"] and d["arrived_at"] >= since}
    assert owner, "the planted late delivery arrived within the check's window"
    assert listed == owner


def _owner_counts(deliveries, agencies, first_day, last_day) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for d in deliveries:
        if d["agency"] in agencies and first_day <= _london_day(d["arrived_at"]) <= last_day \
                and d["status"] in ("accepted", "rejected") and d["owner_late"]:
            n, most = out.get(d["contract_id"], (0, 0))
            out[d["contract_id"]] = (n + 1, max(most, d["owner_minutes"]))
    return out


def _pack_counts(doc: dict) -> dict[str, tuple[int, int]]:
    return {e["contract"]: (e["late"], e["max_minutes_late"]) for a in doc["agencies"] for e in a["extracts"] if e["late"]}


def test_the_board_packs_data_quality_facts_count_the_late_deliveries_the_owner_was_told_of(night):
    settings, _, contracts, deliveries = night
    protocol = load_protocol(settings.protocols_dir / "falls-board.yaml")
    doc = json.loads((settings.releases_dir / protocol.id / DEMO_RUN_DATE.isoformat() / DATA_QUALITY_FILE).read_text())
    first, last = (datetime.fromisoformat(doc["window"][k]).date() for k in ("from", "to"))
    assert _pack_counts(doc) == _owner_counts(deliveries, set(protocol.doc["controllers"]), first, last)

    agencies = sorted({c.agency for c in contracts.values()})  # every agency, over every day of the history
    first = min(_london_day(d["arrived_at"]) for d in deliveries)
    last = max(_london_day(d["arrived_at"]) for d in deliveries)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        whole = summarise(con, agencies, contracts, first, last)
    assert _pack_counts(whole) == _owner_counts(deliveries, set(agencies), first, last)
    assert sum(n for n, _ in _pack_counts(whole).values()) == sum(d["owner_late"] for d in deliveries)
