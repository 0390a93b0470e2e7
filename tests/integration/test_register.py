"""The agreement register: each protocol as a page (HTML and PDF) an IG lead signs off, its
data-flow picture, the index of states, drift, and the night's warnings.

Built from the committed protocol and contract files and the dbt project's SQL, with a small
warehouse holding a release log written here; the PDFs by headless Chromium, read back with
pdftotext; the warning e-mail through a real SMTP server on loopback. No night is run."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import yaml

from orchestration.partnership.contracts.model import load_contracts
from orchestration.partnership.register.build import write_register
from orchestration.partnership.register.flow import flow_svg
from orchestration.partnership.register.history import read_history
from orchestration.partnership.register.lineage import read_models
from orchestration.partnership.register.render import render_page
from orchestration.partnership.register.state import DRIFT, EXPIRED, EXPIRING, IN_FORCE, standing
from orchestration.partnership.releases.log import append
from orchestration.partnership.releases.protocols import load_protocol, load_protocols
from orchestration.partnership.settings import PROJECT_ROOT, Settings
from orchestration.partnership.warehouse.connection import connect, ensure_schemas
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.dbt_free

PROTOCOLS_DIR = PROJECT_ROOT / "contracts" / "protocols"
CONTRACTS_DIR = PROJECT_ROOT / "contracts" / "agencies"
DBT_DIR = PROJECT_ROOT / "dbt_project"
ON = date(2026, 11, 28)
# Release log entries written for the fixture: (protocol, date, status); the oracle of "releases made".
LOGGED = [("falls-board", date(2026, 11, 26), "published"), ("falls-board", date(2026, 11, 27), "unchanged"),
          ("falls-board", date(2026, 11, 28), "published"), ("supporting-families", date(2026, 11, 28), "blocked"),
          ("asb-hotspots-2025", date(2026, 11, 28), "not_in_force")]


def _raw(pid: str) -> dict:
    """The protocol file read independently of the product's loader."""
    return yaml.safe_load((PROTOCOLS_DIR / f"{pid}.yaml").read_text())


def _text(html: str) -> str:
    """The page's visible text: tags and the style block dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Settings:
    """A data folder with a warehouse whose release log holds LOGGED, and the folder of one
    falls-board release (the other published one is gone, as if deleted under retention)."""
    data = tmp_path_factory.mktemp("register")
    settings = Settings(data_dir=data)
    protocols = load_protocols(PROTOCOLS_DIR)
    kept = settings.releases_dir / "falls-board" / "2026-11-28"
    kept.mkdir(parents=True)
    (kept / "manifest.json").write_text(json.dumps({"protocol": {"id": "falls-board", "text_sha256": "1" * 64,
                                                                 "signed_text_sha256": "2" * 64}}))
    with connect(settings.warehouse_path) as con, pytest.MonkeyPatch.context() as m:
        m.setenv("PARTNERSHIP_PSEUDONYM_KEY", TEST_KEY)  # log entries are signed with a key derived from it
        ensure_schemas(con)
        for pid, day, status in LOGGED:
            folder = settings.releases_dir / pid / day.isoformat() if status == "published" else None
            append(con, protocols[pid], day, status, folder, f"{pid}-{day}".encode().hex()[:64] if folder else None,
                   "stopped by its audit" if status == "blocked" else "")
    return settings


def _standing(pid: str, on: date = ON, contracts_dir: Path = CONTRACTS_DIR, dbt_dir: Path = DBT_DIR,
              protocols_dir: Path = PROTOCOLS_DIR):
    return standing(load_protocol(protocols_dir / f"{pid}.yaml"), on, load_contracts(contracts_dir), read_models(dbt_dir))


@pytest.mark.parametrize("pid", sorted(p.stem for p in PROTOCOLS_DIR.glob("*.yaml")))
def test_each_protocols_page_holds_each_of_its_fields(pid, world):
    raw = _raw(pid)
    page = _text(render_page(_standing(pid), load_contracts(CONTRACTS_DIR),
                             read_history(world.warehouse_path, world.releases_dir).get(pid)))
    expected = [raw["title"], raw["id"], raw["version"], " ".join(raw["purpose"].split()), raw["level"],
                raw["lawful_basis"]["article_6"], raw["recipient"]["name"], raw["recipient"]["contact"],
                raw["valid_from"].isoformat(), raw["valid_until"].isoformat(), raw["review_date"].isoformat(),
                raw["dpia"]["reference"], f"{raw['dpia']['risk']} risk", raw["dpia"]["completed"],
                " ".join(raw["individual_rights"].split()), " ".join(raw["security"].split()),
                str(raw["retention"]["recipient_copy_days"]), " ".join(raw["retention"].get("on_expiry", "").split()),
                raw["signature"]["text_sha256"]]
    expected += [raw["lawful_basis"]["article_9"]] if raw["lawful_basis"]["article_9"] else []
    expected += [" ".join(raw["lawful_basis"]["notes"].split())] + list(raw["lawful_basis"].get("other", []))
    expected += raw["recipient"].get("distribution_list", [])
    roles = {"controller": "controller", "joint_controller": "joint controller", "processor": "processor"}
    for party in raw["parties"]:
        expected += [party["name"], f"{party['assurance']['scheme']}: {party['assurance']['status']} "
                                    f"({party['assurance']['as_of']})"]
        assert re.search(re.escape(party["name"]) + r"( \(recipient\))? " + roles[party["role"]], page), party
    for s in raw["signature"]["signatories"]:
        expected += [f"{s['name']}, {s['title']}", s["signed_on"]]
    for out in raw["outputs"]:
        expected += [out["table"], out["source"], ", ".join(out["columns"]), " ".join(out.get("description", "").split())]
        for key, allowed in (out.get("row_filters") or {}).items():
            if key == "geography":
                expected += allowed["within"]
            elif key not in ("cells", "age", "cohort"):
                expected.append(", ".join(str(v) for v in allowed))
    dc = raw.get("disclosure_control")
    if dc:
        expected += [f"Counts from {dc['suppress_counts_from']} to {dc['suppress_counts_to']} are suppressed",
                     f"rounded to the nearest {dc['rounding_base']}"]
        expected += [m["name"] for m in dc.get("secondary_suppression", {}).get("margins", [])]
    for cid, cols in raw["data_items"].items():
        expected.append(cid)
        expected += cols
    missing = [e for e in expected if str(e) not in page]
    assert not missing, f"{pid}: not on its page: {missing}"
    # the releases made under it, as the release log was written above
    for logged_pid, day, status in LOGGED:
        if logged_pid == pid and status in ("published", "blocked"):
            assert f"{day.isoformat()} {raw['version']} {status}" in page, (pid, day, status)
    if pid == "falls-board":
        assert "2026-11-28 1.0.0 published, held" in page and "2026-11-26 1.0.0 published, deleted under retention" in page
        # the held release's manifest records a protocol text other than the one signed
        assert "published, held made under a protocol text other than the one signed" in page
        assert page.count("other than the one signed") == 1
        assert "2026-11-27" not in page.split("Releases made under it", 1)[1], "an unchanged night is no release"


def _svg_text(svg: str) -> str:
    root = ET.fromstring(svg)
    lines = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}tspan")]  # one per line drawn
    lines += [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text]
    return " ".join(" ".join(lines).split())


@pytest.mark.parametrize("pid", sorted(p.stem for p in PROTOCOLS_DIR.glob("*.yaml")))
def test_the_picture_names_every_controller_and_every_column_that_leaves_and_fetches_nothing(pid):
    raw = _raw(pid)
    svg = flow_svg(load_protocol(PROTOCOLS_DIR / f"{pid}.yaml"), load_contracts(CONTRACTS_DIR), raw["data_items"])
    text = _svg_text(svg)
    names = {p["id"]: p["name"] for p in raw["parties"]}
    for agency in raw["controllers"]:
        assert names[agency] in text, agency
    tokens = set(re.split(r"[,\s()]+", text))
    for out in raw["outputs"]:
        assert set(out["columns"]) <= tokens, (out["table"], set(out["columns"]) - tokens)
        assert out["table"] in tokens
    assert raw["recipient"]["name"] in text and raw["level"] in tokens
    assert not re.search(r"(?i)href|<image|<script|url\((?!#)", svg), "the picture refers to nothing outside itself"


def test_the_pdf_of_a_page_carries_its_fields_and_the_folder_is_owner_only(world):
    protocols = {pid: load_protocol(PROTOCOLS_DIR / f"{pid}.yaml") for pid in ("supporting-families", "falls-board")}
    result = write_register(world, ON, protocols, load_contracts(CONTRACTS_DIR))
    assert sorted(result.printed) == sorted(protocols)
    for pid in protocols:
        raw = _raw(pid)
        pdf = result.folder / f"{pid}.pdf"
        text = " ".join(subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                                       check=True).stdout.split())
        for want in (raw["title"], raw["dpia"]["reference"], raw["signature"]["signatories"][0]["name"],
                     *[p["name"] for p in raw["parties"] if p["id"] in raw["controllers"]], raw["recipient"]["name"]):
            assert " ".join(want.split()) in text, (pid, want)
        pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        assert int(re.search(r"Pages:\s+(\d+)", pages).group(1)) == 2, "a one-page summary, then the schedule"
        first = " ".join(subprocess.run(["pdftotext", "-l", "1", str(pdf), "-"], capture_output=True, text=True,
                                        check=True).stdout.split())
        assert "Releases made under it" in first and raw["signature"]["signatories"][-1]["name"] in first
        assert "Schedule: data items" not in first
    assert stat.S_IMODE(result.folder.stat().st_mode) == 0o700
    for f in result.folder.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    again = write_register(world, ON, protocols, load_contracts(CONTRACTS_DIR))
    assert again.printed == [], "an unchanged page is not printed again"
    index = _text((result.folder / "index.html").read_text())
    assert "falls-board v1.0.0" in index and "supporting-families v1.0.0" in index and "asb-hotspots" not in index


def test_the_index_gives_each_agreement_its_state_on_the_day(world, tmp_path):
    protocols = load_protocols(PROTOCOLS_DIR)
    contracts = load_contracts(CONTRACTS_DIR)
    on_day = write_register(Settings(data_dir=tmp_path), ON, protocols, contracts, pdf=False)
    states = {s.protocol.id: s.labels for s in on_day.standings}
    # the oracle: each file's own dates against the day
    for pid in protocols:
        raw = _raw(pid)
        term = (EXPIRED if ON > raw["valid_until"] else
                EXPIRING if (raw["valid_until"] - ON).days <= 90 else IN_FORCE)
        assert states[pid][0] == term, pid
    assert states["asb-hotspots-2025"] == [EXPIRED] and states["falls-board"] == [IN_FORCE]
    index = (tmp_path / "reports" / "register" / "index.html").read_text()
    assert re.search(r'data-protocol="asb-hotspots-2025">.*?data-state="expired"', index, re.S)
    assert not list((tmp_path / "reports" / "register").glob("*.pdf")), "--no-pdf prints nothing"
    assert 'href="falls-board.html"' in index and ".pdf" not in index, "no link to a PDF that is not there"


def _copy_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    contracts = tmp_path / "agencies"
    shutil.copytree(CONTRACTS_DIR, contracts)
    dbt = tmp_path / "dbt_project"
    shutil.copytree(DBT_DIR / "models", dbt / "models")
    protocols = tmp_path / "protocols"
    shutil.copytree(PROTOCOLS_DIR, protocols)
    return contracts, dbt, protocols


def _add_contract_column(contracts: Path, name: str) -> None:
    path = contracts / "riverside_acute" / "emergency_admissions.odcs.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["schema"][0]["properties"].append({"name": name, "logicalType": "integer", "description": "Frailty score.",
                                           "classification": "special_category"})
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def test_a_contract_column_that_now_feeds_a_release_is_drift_and_one_that_feeds_nothing_is_not(tmp_path):
    contracts, dbt, protocols = _copy_tree(tmp_path)
    assert _standing("falls-analysts", contracts_dir=contracts, dbt_dir=dbt).drift == []
    _add_contract_column(contracts, "frailty_score")
    quiet = _standing("falls-analysts", contracts_dir=contracts, dbt_dir=dbt)
    assert quiet.drift == [], "a column no model reads feeds no release"
    model = dbt / "models" / "staging" / "riverside_acute" / "stg_riverside_acute__emergency_admissions.sql"
    model.write_text(model.read_text().replace("        admission_method,\n",
                                               "        admission_method,\n        frailty_score,\n", 1))
    for pid in ("falls-analysts", "falls-board"):  # both read the admissions through their marts
        s = _standing(pid, contracts_dir=contracts, dbt_dir=dbt)
        assert s.added == {"riverside_acute__emergency_admissions": ["frailty_score"]}, pid
        assert DRIFT in s.labels and any("frailty_score" in w for w in s.warnings)
    sg = _standing("safeguarding-board", contracts_dir=contracts, dbt_dir=dbt)
    assert sg.drift == [], "an agreement whose release does not read the extract does not drift"
    page = _text(render_page(_standing("falls-analysts", contracts_dir=contracts, dbt_dir=dbt),
                             load_contracts(contracts), None))
    assert "Drift: the files no longer match what was signed" in page and "frailty_score" in page


def test_a_protocol_edited_after_signature_is_drift_until_the_new_text_is_signed(tmp_path):
    _, _, protocols = _copy_tree(tmp_path)
    path = protocols / "falls-board.yaml"
    assert _standing("falls-board", protocols_dir=protocols).drift == []
    path.write_text(path.read_text().replace("suppress_counts_to: 7", "suppress_counts_to: 5", 1))
    edited = _standing("falls-board", protocols_dir=protocols)
    assert edited.text_changed and DRIFT in edited.labels
    assert any("changed since it was signed" in d for d in edited.drift)
    # Adding a signatory touches only the signature block: not the text signed.
    path.write_text(path.read_text().replace("suppress_counts_to: 5", "suppress_counts_to: 7", 1)
                    + '    - {party: riverside-shared-services, name: "A N Other", title: "DPO", signed_on: "2025-03-22"}\n')
    assert _standing("falls-board", protocols_dir=protocols).drift == []
    # A new version: the text changes, the operator records its hash as signed, and drift clears.
    path.write_text(path.read_text().replace("version: 1.0.0", "version: 1.1.0", 1))
    assert _standing("falls-board", protocols_dir=protocols).text_changed
    printed = subprocess.run([str(Path(__import__("sys").executable)), "-m", "orchestration.partnership.cli", "register",
                              "hash", str(path)], capture_output=True, text=True, cwd=PROJECT_ROOT)
    new_hash = printed.stdout.splitlines()[0]
    assert printed.returncode == 0 and "changed since it was signed" in printed.stdout
    import hashlib  # the oracle: the file's bytes without the lines of the signature block
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, ln in enumerate(lines) if ln.startswith("signature:"))
    assert new_hash == hashlib.sha256("".join(lines[:start]).encode()).hexdigest()
    old_hash = yaml.safe_load(path.read_text())["signature"]["text_sha256"]
    path.write_text(path.read_text().replace(old_hash, new_hash))
    assert _standing("falls-board", protocols_dir=protocols).drift == []


@pytest.fixture
def smtp_server(monkeypatch):
    import socket

    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("PARTNERSHIP_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PARTNERSHIP_SMTP_PORT", str(port))
    monkeypatch.setenv("PARTNERSHIP_SMTP_FROM", "warehouse@riverside.gov.example")
    monkeypatch.delenv("PARTNERSHIP_SMTP_STARTTLS", raising=False)
    monkeypatch.delenv("PARTNERSHIP_SMTP_USER", raising=False)
    monkeypatch.setenv("PARTNERSHIP_OPS_EMAIL", "ops@riverside.gov.example")
    yield inbox
    controller.stop()


def test_the_night_warns_of_an_agreement_expiring_within_90_days_once_and_not_of_an_expired_one(
        tmp_path, smtp_server, monkeypatch):
    from orchestration.partnership.register.night import night_register
    from orchestration.partnership.settings import run_date

    monkeypatch.setenv("PARTNERSHIP_RUN_DATE", "2028-02-01")  # 59 days before falls-board ends
    protocols = {pid: load_protocol(PROTOCOLS_DIR / f"{pid}.yaml") for pid in ("falls-board", "asb-hotspots-2025")}
    settings = Settings(data_dir=tmp_path)
    done = night_register(settings, run_date(), protocols, load_contracts(CONTRACTS_DIR))
    assert done.mail == "sent" and len(smtp_server.messages) == 1
    rcpt, raw = smtp_server.messages[0]
    body = message_from_bytes(raw, policy=policy.default).get_body().get_content()
    assert rcpt == ["ops@riverside.gov.example"]
    assert "falls-board: expires on 2028-03-31 (within 90 days)" in body
    assert "falls-board: review overdue since 2027-03-31" in body
    assert "asb-hotspots-2025" not in body, "an expired agreement produces nothing and is not warned of"
    assert any("falls-board: expires on 2028-03-31" in w for w in done.warnings)
    index = _text((done.result.folder / "index.html").read_text())
    assert "Needs attention" in index and "falls-board: expires on 2028-03-31" in index
    states = {s.protocol.id: s.labels for s in done.result.standings}
    assert states == {"falls-board": [EXPIRING, "review overdue"], "asb-hotspots-2025": [EXPIRED]}
    again = night_register(settings, run_date(), protocols, load_contracts(CONTRACTS_DIR))
    assert again.mail == "already_sent" and len(smtp_server.messages) == 1, "a standing warning is e-mailed once"
    monkeypatch.setenv("PARTNERSHIP_RUN_DATE", "2027-01-15")  # no expiry near; the review is due
    later = night_register(settings, run_date(), protocols, load_contracts(CONTRACTS_DIR))
    assert later.mail == "sent" and len(smtp_server.messages) == 2
    assert later.warnings == ["falls-board: review due on 2027-03-31 (within 90 days)"]
