"""The demo night's agreement register: written by the night after the releases, owner-only,
each agreement in its state on the run date, and each page listing the releases the night's
release log records."""

from __future__ import annotations

import html as htmllib
import re
import stat

import duckdb
import pytest

from tests.conftest import DEMO_RUN_DATE

pytestmark = pytest.mark.dbt_free


def _text(path) -> str:
    body = re.sub(r"<style>.*?</style>", " ", path.read_text(), flags=re.S)
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def test_the_night_writes_the_register_after_its_releases(demo_night):
    settings, result = demo_night
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert any(s.startswith("register") for s in steps), sorted(steps)
    folder = settings.reports_dir / "register"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    protocols = sorted(p.stem for p in (settings.protocols_dir).glob("*.yaml"))
    assert names == sorted(["index.html", *(f"{p}.{e}" for p in protocols for e in ("html", "pdf"))])
    index = (folder / "index.html").read_text()
    # the run date against the files' own dates: only the ASB agreement has ended
    assert re.search(r'data-protocol="asb-hotspots-2025">.*?data-state="expired"', index, re.S)
    for pid in protocols:
        if pid != "asb-hotspots-2025":
            assert re.search(rf'data-protocol="{pid}">.*?data-state="in force"', index, re.S), pid
    assert f"on {DEMO_RUN_DATE.isoformat()}" in index


def test_each_page_lists_the_releases_the_release_log_records(demo_night):
    settings, _ = demo_night
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        made = con.execute("""select protocol_id, release_date, status from ops.release_log
                              where status in ('published', 'blocked')""").fetchall()
    finally:
        con.close()
    assert made, "the demo night published releases"
    for pid, day, status in made:
        page = _text(settings.reports_dir / "register" / f"{pid}.html")
        assert f"{day.isoformat()} 1.0.0 {status}" in page, (pid, day, status)


def test_each_release_of_the_night_records_the_protocol_text_it_was_made_under_and_that_it_was_signed(demo_night):
    import hashlib
    import json

    settings, _ = demo_night
    manifests = sorted(settings.releases_dir.glob(f"*/{DEMO_RUN_DATE.isoformat()}/manifest.json"))
    assert manifests
    for manifest in manifests:
        protocol = json.loads(manifest.read_text())["protocol"]
        text = (settings.protocols_dir / f"{protocol['id']}.yaml").read_text()
        # the oracle: the file's lines before its signature block (the last key of each committed file)
        signed = text[:text.index("\nsignature:") + 1]
        assert protocol["text_sha256"] == hashlib.sha256(signed.encode()).hexdigest() == protocol["signed_text_sha256"]
        page = _text(settings.reports_dir / "register" / f"{protocol['id']}.html")
        assert "other than the one signed" not in page
