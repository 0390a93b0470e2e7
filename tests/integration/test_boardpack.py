"""Board packs built from a real release: a small warehouse, the real release engine, the pack,
headless Chromium, and a real SMTP server on loopback.

The warehouse here is written by the test (indicator values with known small and large counts,
and deliveries that were late, rejected or over their quarantine tolerance), so what the pack
must say is known independently of the pack's code.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import polars as pl
import pytest

import orchestration.partnership.boardpack.model as model
from orchestration.partnership.boardpack.build import build_pack
from orchestration.partnership.releases.audit import audit_release
from orchestration.partnership.releases.protocols import load_protocol
from orchestration.partnership.releases.publish import release
from orchestration.partnership.warehouse.connection import ensure_schemas
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.dbt_free

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = load_protocol(ROOT / "contracts" / "protocols" / "falls-board.yaml")
RELEASE_DATE = date(2026, 11, 28)
WARDS = [(f"E0590000{i}", name) for i, name in enumerate(["Harbour", "Castle", "Abbey", "Saltmarsh", "Quayside"], start=1)]
QUARTERS = [date(2025, 10, 1), date(2026, 1, 1), date(2026, 4, 1), date(2026, 7, 1)]
INDICATORS = [  # id, unit, direction, target
    ("FALLS-02", "percent", "lower", 20.0),
    ("FALLS-03", "percent", "higher", 50.0),
    ("FALLS-04", "percent", "higher", None),
]


def _wilson(n: int, d: int) -> tuple[float, float, float]:
    z = 1.959964
    p = n / d
    centre = (p + z * z / (2 * d)) / (1 + z * z / d)
    half = z * math.sqrt(p * (1 - p) / d + z * z / (4 * d * d)) / (1 + z * z / d)
    return 100 * p, 100 * (centre - half), 100 * (centre + half)


def _quarter_end(q: date) -> date:
    return (date(q.year + (q.month + 2) // 12, (q.month + 2) % 12 + 1, 1)) - timedelta(days=1)


def _values() -> list[tuple]:
    rows = []
    for k, (iid, unit, _, _) in enumerate(INDICATORS):
        for qi, q in enumerate(QUARTERS):
            # the district: a quarter with 5 people (suppressed) for FALLS-03 in the second quarter
            n, d = (5, 60) if (iid == "FALLS-03" and qi == 1) else (40 + 10 * k + 5 * qi, 200 + 20 * qi)
            rows.append((iid, "quarter", q, _quarter_end(q), "district", "E07900001", "Riverside", "persons", n, d,
                         *_wilson(n, d), unit))
            for sex, share in (("sex:F", 0.6), ("sex:M", 0.4)):
                sn, sd = round(n * share), round(d * share)
                rows.append((iid, "quarter", q, _quarter_end(q), "district", "E07900001", "Riverside", sex, sn, sd,
                             *_wilson(sn, sd), unit))
            for w, (code, name) in enumerate(WARDS):
                wn = 3 if w == 0 else 10 + 6 * w + k  # Harbour: 3 people, suppressed
                wd = 40 + 5 * w
                rows.append((iid, "quarter", q, _quarter_end(q), "ward", code, name, "persons", wn, wd,
                             *_wilson(wn, wd), unit))
    return rows


def _write_warehouse(path: Path, statistics_functions: list[str]) -> None:
    with duckdb.connect(str(path)) as con:
        for statement in statistics_functions:  # what dbt creates beside the indicator marts
            con.execute(statement)
        ensure_schemas(con)
        con.execute("create schema if not exists marts")
        con.execute("""create table marts.fct_indicator_values (indicator_id varchar, period_type varchar, period_start date,
            period_end date, geography_type varchar, geography_code varchar, geography_name varchar, breakdown varchar,
            numerator bigint, denominator bigint, value double, lower_ci double, upper_ci double, unit varchar)""")
        con.executemany("insert into marts.fct_indicator_values values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _values())
        con.execute("""create table marts.dim_indicators (indicator_id varchar, title varchar, definition varchar, source varchar,
            numerator_definition varchar, denominator_definition varchar, unit varchar, direction varchar, target double,
            method varchar)""")
        con.executemany("insert into marts.dim_indicators values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            (iid, f"Title of {iid}", f"Definition of {iid}.", "local", "numerator", "denominator", unit, direction, target,
             "Wilson score 95% intervals") for iid, unit, direction, target in INDICATORS])
        deliveries = [  # agency, contract, extract, file, arrived (UTC), status, reason_code, read, quarantined, warnings
            ("county_ambulance", "county_ambulance__incidents", "incidents", "incidents_20261126.csv",
             datetime(2026, 11, 27, 7, 42), "accepted", None, 100, 1, []),
            ("riverside_acute", "riverside_acute__ae_attendances", "ae_attendances", "ae_attendances_20261126.csv",
             datetime(2026, 11, 27, 1, 30), "accepted", None, 10, 2, ["quarantine_rate (20.0% of rows; tolerance 5%)"]),
            ("riverside_fire", "riverside_fire__safe_and_well_visits", "safe_and_well_visits", "safe_and_well_visits_20261122.csv",
             datetime(2026, 11, 23, 1, 30), "rejected", "encoding", None, None, None),
            ("riverside_fire", "riverside_fire__safe_and_well_visits", "safe_and_well_visits", "safe_and_well_visits_20261122.csv",
             datetime(2026, 11, 23, 3, 0), "accepted", None, 4, 0, []),
            ("riverside_council", "riverside_council__housing_adaptations", "housing_adaptations", "housing_adaptations_20260901.xlsx",
             datetime(2026, 9, 1, 9, 0), "rejected", "row_count", None, None, None),  # outside the window
            ("county_police", "county_police__incidents", "incidents", "incidents_20261126.csv",  # not a controller
             datetime(2026, 11, 27, 9, 0), "rejected", "encoding", None, None, None),
        ]
        for i, (agency, cid, extract, name, arrived, status, code, read, quar, warn) in enumerate(deliveries, start=1):
            con.execute("""insert into ops.deliveries (delivery_id, contract_id, agency, extract, file_name, landing_path, sha256,
                size_bytes, arrived_at, registered_at, status, reason_code, reason, rows_read, rows_valid, rows_quarantined,
                warnings) values (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                        [i, cid, agency, extract, name, f"{agency}/{extract}/{name}", f"{i:064x}", arrived, arrived, status,
                         code, f"{name}: {code}" if code else None, read, None if read is None else read - quar, quar,
                         None if warn is None else json.dumps(warn)])


@pytest.fixture(scope="module", autouse=True)
def release_key():
    """Releases and their log entries are signed with keys derived from the pseudonymisation key."""
    with pytest.MonkeyPatch.context() as m:
        m.setenv("PARTNERSHIP_PSEUDONYM_KEY", TEST_KEY)
        m.delenv("PARTNERSHIP_PSEUDONYM_KEY_FILE", raising=False)
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory, statistics_functions):
    root = tmp_path_factory.mktemp("boardpack")
    warehouse = root / "warehouse.duckdb"
    _write_warehouse(warehouse, statistics_functions)
    result = release(warehouse, root / "releases", PROTOCOL, RELEASE_DATE)
    assert result.status == "published"
    pack = build_pack(result.path, PROTOCOL)
    return result.path, pack


class _Cells(HTMLParser):
    """Every element carrying data-field, with its attributes and text."""

    def __init__(self):
        super().__init__()
        self.cells, self._open = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._open.append((tag, a, []) if ("data-field" in a or "data-role" in a) else (tag, None, None))

    def handle_endtag(self, tag):
        while self._open:
            t, a, text = self._open.pop()
            if a is not None:
                self.cells.append((a, "".join(text).strip()))
                if self._open and self._open[-1][1] is not None:
                    self._open[-1][2].append("".join(text))
            if t == tag:
                break

    def handle_data(self, data):
        for _, a, text in self._open:
            if a is not None:
                text.append(data)


def _cells(html: str) -> list[tuple[dict, str]]:
    p = _Cells()
    p.feed(html)
    return p.cells


def test_the_release_audit_refuses_the_documentation_of_a_model_the_release_does_not_hold(built, tmp_path):
    folder, _ = built
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert audit_release(copy, PROTOCOL) == []
    (copy / "model_docs" / "fct_falls_pathway_events.md").write_text("# `marts.fct_falls_pathway_events`\n")
    assert any("unexpected model documentation" in p for p in audit_release(copy, PROTOCOL))


def test_the_release_carries_its_data_quality_facts_listed_in_its_manifest_and_passes_its_audit(built):
    folder, _ = built
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "data_quality.json" in manifest["files"]
    assert audit_release(folder, PROTOCOL) == [], "the published folder, with its board pack, still passes the audit"
    dq = json.loads((folder / "data_quality.json").read_text())
    agencies = {a["agency"] for a in dq["agencies"]}
    assert agencies == set(PROTOCOL.doc["controllers"]), "only the protocol's controllers are reported"
    text = json.dumps(dq)
    assert ".csv" not in text and ".xlsx" not in text, "no file names leave the secure zone"


def test_the_release_audit_refuses_a_data_quality_file_carrying_more_than_counts(built, tmp_path):
    folder, _ = built
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    dq = json.loads((copy / "data_quality.json").read_text())
    dq["agencies"][0]["extracts"][0]["rows"] = [{"nhs_number": "9434765919"}]
    (copy / "data_quality.json").write_text(json.dumps(dq))
    assert any("data_quality.json" in p for p in audit_release(copy, PROTOCOL))


def test_every_number_in_the_pack_equals_the_release(built):
    folder, pack = built
    values = pl.read_parquet(folder / "parquet" / "indicator_values.parquet")
    by_key = {(r["indicator_id"], r["geography_code"], r["period_type"], r["period_start"].isoformat(), r["breakdown"]): r
              for r in values.iter_rows(named=True)}
    cells = [(a, t) for a, t in _cells(pack.html.read_text()) if "data-indicator" in a and "data-field" in a]
    assert len(cells) > 100
    for a, text in cells:
        row = by_key[(a["data-indicator"], a["data-geo"], a["data-period-type"], a["data-period"], a["data-breakdown"])]
        field = a["data-field"]
        v = row[field]
        if field in ("numerator", "denominator"):
            if row[f"{field}_suppressed"]:
                assert a["data-state"] == "suppressed" and text.startswith("suppressed"), (a, text)
            else:
                assert text == f"{v:,d}", (a, text, v)
        elif row["derived_withheld"]:
            assert a["data-state"] == "suppressed" and text.startswith("suppressed"), (a, text)
        else:
            assert text == f"{v:,.1f}", (a, text, v)


def test_suppressed_cells_are_shown_as_suppressed_never_as_zero(built):
    folder, pack = built
    html = pack.html.read_text()
    cells = [(a, t) for a, t in _cells(html) if a.get("data-state") == "suppressed"]
    values = pl.read_parquet(folder / "parquet" / "indicator_values.parquet")
    harbour = values.filter((pl.col("geography_code") == "E05900001") & (pl.col("period_start") == QUARTERS[-1]))
    assert harbour["numerator_suppressed"].all() and harbour["value"].is_null().all()
    # the page compares wards over the pooled 12 months, where Harbour's four quarters of 3 are 12 (published
    # as 10): its suppressed quarter appears nowhere as a number
    everything = _cells(html)
    assert not [t for a, t in everything if a.get("data-geo") == "E05900001" and a.get("data-period-type") == "quarter"
                and a.get("data-period") == QUARTERS[-1].isoformat() and any(ch.isdigit() for ch in t)]
    pooled = [(a, t) for a, t in everything if a.get("data-geo") == "E05900001"
              and a.get("data-period-type") == "rolling_12_months" and a.get("data-field") == "numerator"]
    assert pooled and all(t == "10" for a, t in pooled), "Harbour over 12 months carries its (rounded) count"
    assert cells and all(t.startswith("suppressed") and not any(ch.isdigit() for ch in t) for a, t in cells)
    assert "Suppressed" in html and "is not zero" in html, "the note explaining suppression is there"
    # the district quarter suppressed in the release is a withheld point in the FALLS-03 trend, named in its text alternative
    section = next(s for s in pack.pack.indicators if s.id == "FALLS-03")
    # the 12 months pooled for the ward comparison add the four quarters up: one more quarter is hidden with it,
    # else the suppressed one would be the pooled total less the other three
    states = [c.state for c in section.trend]
    assert states[1] == "suppressed" and states.count("suppressed") == 2 and states.count("shown") == 2
    assert f"Suppressed: {', '.join(c.period_label for c in section.trend if c.state == 'suppressed')}" in html


def test_headline_tiles_show_latest_value_change_rag_and_direction(built):
    folder, pack = built
    values = pl.read_parquet(folder / "parquet" / "indicator_values.parquet")
    roles = [(a, t) for a, t in _cells(pack.html.read_text()) if "data-role" in a]
    latest = [t for a, t in roles if a["data-role"] == "latest-value"]
    rags = [a["data-rag"] for a, t in roles if a["data-role"] == "rag"]
    directions = [t for a, t in roles if a["data-role"] == "direction"]
    assert len(latest) == len(rags) == len(directions) == len(INDICATORS)
    for (iid, _, direction, target), shown, rag_status, dir_text in zip(INDICATORS, latest, rags, directions):
        row = values.filter((pl.col("indicator_id") == iid) & (pl.col("geography_type") == "district")
                            & (pl.col("breakdown") == "persons") & (pl.col("period_start") == QUARTERS[-1])).row(0, named=True)
        assert shown == f"{row['value']:,.1f}"
        assert ("Lower is better" in dir_text) == (direction == "lower")
        if target is None:
            expected = "none"
        elif (direction == "lower" and row["upper_ci"] < target) or (direction == "higher" and row["lower_ci"] > target):
            expected = "green"
        elif (direction == "lower" and row["lower_ci"] > target) or (direction == "higher" and row["upper_ci"] < target):
            expected = "red"
        else:
            expected = "amber"
        assert rag_status == expected, iid
    change = [t for a, t in roles if a["data-role"] == "change"]
    prev = values.filter((pl.col("indicator_id") == "FALLS-02") & (pl.col("geography_type") == "district")
                         & (pl.col("breakdown") == "persons")).sort("period_start")["value"].to_list()
    # the change is the difference of the values as the page prints them (they agree as printed)
    printed = [float(f"{v:.1f}") for v in prev[-2:]]
    assert change[0].startswith(("+", "−")) and f"{abs(printed[1] - printed[0]):,.1f}" in change[0]


def test_rag_follows_the_whole_interval_against_the_target():
    c = model.Cell("quarter", date(2026, 7, 1), date(2026, 9, 30), "X", "X", "persons", 10, False, 100, False,
                   10.0, 6.0, 14.0, False)
    assert model.rag(c, "lower", 20.0).status == "green"
    assert model.rag(c, "lower", 12.0).status == "amber"
    assert model.rag(c, "lower", 5.0).status == "red"
    assert model.rag(c, "higher", 5.0).status == "green"
    assert model.rag(c, "higher", 20.0).status == "red"
    assert model.rag(c, "higher", None).status == "none"
    withheld = model.Cell("quarter", date(2026, 7, 1), date(2026, 9, 30), "X", "X", "persons", None, True, 100, False,
                          None, None, None, True)
    assert model.rag(withheld, "lower", 20.0).status == "none"


def test_the_ward_comparison_is_a_chart_with_a_text_alternative_and_the_district_value(built):
    _, pack = built
    html = pack.html.read_text()
    section = next(s for s in pack.pack.indicators if s.id == "FALLS-02")
    assert section.wards.area is not None and section.wards.area.geography_code == "E07900001"
    assert html.count('<svg role="img" aria-label=') >= 2 * len(INDICATORS), "a trend and a ward chart per indicator"
    # Harbour's quarters (3 each) are suppressed; over the pooled 12 months every ward carries a value
    assert {c.period_type for c, _ in section.wards.wards} == {"rolling_12_months"}
    assert section.wards.area.period_type == "rolling_12_months"
    assert all(how in ("higher", "lower", "similar") for _, how in section.wards.wards)
    assert "Harbour" in [c.geography_name for c, _ in section.wards.wards]


def test_the_pdf_renders_and_carries_the_manifest_hash(built, tmp_path):
    folder, pack = built
    manifest = json.loads((folder / "manifest.json").read_text())
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pack.pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert pages and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000 for p in pages)
    text = subprocess.run(["pdftotext", "-layout", str(pack.pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert manifest["content_sha256"] in text.replace("\n", "").replace(" ", "") or manifest["content_sha256"] in text
    assert "Data quality" in text and "Appendix: definitions" in text


def test_the_pdf_is_tagged_has_an_outline_and_splits_no_heading_across_pages(built):
    _, pack = built
    info = subprocess.run(["pdfinfo", str(pack.pdf)], check=True, capture_output=True, text=True).stdout
    assert re.search(r"^Tagged:\s+yes$", info, re.M), "a tagged PDF: screen readers get its structure"
    xml = subprocess.run(["pdftohtml", "-xml", "-stdout", "-i", "-q", str(pack.pdf)], check=True, capture_output=True,
                         text=True).stdout
    assert "<outline>" in xml and ">Data quality</item>" in xml, "an outline (bookmarks) from the headings"
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    texts = [" ".join(subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), str(pack.pdf), "-"], check=True,
                                     capture_output=True, text=True).stdout.split()) for n in range(1, pages + 1)]
    headings = [h for h in (_heading_texts(pack.html.read_text())) if len(h.split()) > 1]
    assert headings
    for h in headings:
        assert any(h in t for t in texts), f"the heading {h!r} is split across pages"


def _heading_texts(html: str) -> list[str]:
    class Headings(HTMLParser):
        def __init__(self):
            super().__init__()
            self.depth, self.found, self.current = 0, [], []

        def handle_starttag(self, tag, attrs):
            if tag in ("h1", "h2", "h3"):
                self.depth += 1
                self.current = []

        def handle_endtag(self, tag):
            if tag in ("h1", "h2", "h3") and self.depth:
                self.depth -= 1
                self.found.append(" ".join("".join(self.current).split()))

        def handle_data(self, data):
            if self.depth:
                self.current.append(data)

    parser = Headings()
    parser.feed(html)
    return parser.found


def test_age_bands_are_in_their_natural_order_not_as_text_sorts_them():
    bands = ["age:16+", "age:10-15", "age:5-9", "persons", "age:1-4", "age:under 1", "sex:M", "sex:F"]
    assert sorted(bands, key=model.breakdown_order) == [
        "persons", "age:under 1", "age:1-4", "age:5-9", "age:10-15", "age:16+", "sex:F", "sex:M"]


def test_the_first_page_says_what_changed_since_the_last_pack_from_the_two_releases_figures(tmp_path,
                                                                                            statistics_functions):
    from orchestration.partnership.boardpack.render import render_html

    warehouse, releases = tmp_path / "warehouse.duckdb", tmp_path / "releases"
    _write_warehouse(warehouse, statistics_functions)
    first = release(warehouse, releases, PROTOCOL, RELEASE_DATE)
    page = render_html(model.load(first.path, PROTOCOL))
    assert "This is the first pack of this protocol" in page
    new_quarter = date(2026, 10, 1)
    with duckdb.connect(str(warehouse)) as con:  # a new quarter of FALLS-02
        con.execute("insert into marts.fct_indicator_values values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ("FALLS-02", "quarter", new_quarter, _quarter_end(new_quarter), "district", "E07900001", "Riverside",
                     "persons", 90, 300, *_wilson(90, 300), "percent"))
    second = release(warehouse, releases, PROTOCOL, RELEASE_DATE + timedelta(days=7))
    assert second.status == "published"
    page = render_html(model.load(second.path, PROTOCOL))
    section = page[page.index('id="changes"'):page.index('id="headlines"')]
    assert f"What changed since the pack of {RELEASE_DATE:%-d %B %Y}" in section
    items = [" ".join(li.split("</li>")[0].split()) for li in section.split("<li>")[1:]]
    new_label = model.period_label("quarter", new_quarter, _quarter_end(new_quarter))
    # Figures already sent are sent again as first sent (held cells, docs/protocols.md): only new ones
    # show, the new quarter and the 12 months it ends (the pooled window moves on with it).
    assert len(items) == 1 and items[0].startswith(f"FALLS-02: new figures for {new_label}, "), items
    assert "no longer reports" in items[0]
    assert "FALLS-03" not in section, "an indicator whose published figures are the same is not listed"


def test_the_pdf_is_vector_only_so_printing_stays_fast(built):
    """A cell background Chromium cannot print as vectors (a CSS gradient) becomes one raster image per
    cell: a county pack had 5,000 of them, 28 MB and a minute of printing. Charts are SVG: no image."""
    _, pack = built
    assert b"/Subtype /Image" not in pack.pdf.read_bytes() and b"/Subtype/Image" not in pack.pdf.read_bytes()


def test_every_chart_spec_is_valid_vega_lite(built, monkeypatch):
    import altair as alt

    import orchestration.partnership.boardpack.charts as charts
    _, pack = built
    specs = []
    monkeypatch.setattr(charts, "to_svg", lambda spec, description, cache=None: specs.append(spec) or "<svg></svg>")
    for s in pack.pack.indicators:
        charts.trend(s)
        charts.wards(s)
    assert len(specs) >= 2 * len(INDICATORS), "a trend and a ward chart per indicator"
    assert {spec["$schema"] for spec in specs} == {alt.SCHEMA_URL}, "the Vega-Lite version Altair checks against"
    for spec in specs:  # Altair raises on a spec the Vega-Lite JSON schema refuses
        assert alt.LayerChart.from_dict(spec, validate=True).to_dict(validate=True) == spec


def test_the_pack_carries_the_release_log_head_its_release_was_anchored_to(built):
    folder, pack = built
    anchor = json.loads((folder / "manifest.json").read_text())["anchor"]
    assert len(anchor["release_log_head"]) == 64
    html = pack.html.read_text()
    assert f'<meta name="release-log-head" content="{anchor["release_log_head"]}">' in html
    assert f'<code data-role="release-log-head">{anchor["release_log_head"]}</code> (entry {anchor["release_log_seq"]})' in html


def test_the_html_opens_in_headless_chromium_without_errors_or_network(built):
    from playwright.sync_api import sync_playwright

    from orchestration.partnership.boardpack.pdf import launch

    _, pack = built
    errors, requests = [], []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(pack.html.as_uri(), wait_until="load")
            assert page.locator("svg[role=img]").count() >= len(INDICATORS)
            assert page.title().startswith(PROTOCOL.doc["title"])
        finally:
            browser.close()
    assert errors == []
    assert requests == [pack.html.as_uri()], "the page needs nothing but itself"


def test_an_unchanged_release_is_not_printed_again_and_a_tampered_one_is_refused(built, tmp_path):
    folder, pack = built
    before = pack.pdf.stat().st_mtime_ns
    again = build_pack(folder, PROTOCOL)
    assert again.status == "unchanged" and again.pdf.stat().st_mtime_ns == before
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(folder, copy)
    df = pl.read_parquet(copy / "parquet" / "indicator_values.parquet").with_columns(numerator=pl.lit(3, dtype=pl.Int64))
    df.write_parquet(copy / "parquet" / "indicator_values.parquet")
    with pytest.raises(model.PackError, match="manifest"):
        build_pack(copy, PROTOCOL)


@pytest.fixture
def smtp_server(monkeypatch):
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free loopback port (aiosmtpd checks its own port once started)
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
    yield inbox
    controller.stop()


def test_the_pack_is_mailed_once_to_the_distribution_list_with_the_pdf_attached(built, smtp_server, tmp_path):
    from orchestration.partnership.boardpack.mail import send_pack

    _, pack = built
    sent = send_pack(pack, PROTOCOL, tmp_path / "reports")
    assert sent.status == "sent"
    assert len(smtp_server.messages) == 1
    mail_from, rcpt, raw = smtp_server.messages[0]
    assert mail_from == "warehouse@riverside.gov.example"
    assert rcpt == PROTOCOL.doc["recipient"]["distribution_list"]
    msg = message_from_bytes(raw, policy=policy.default)
    attachments = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(attachments) == 1 and attachments[0].get_content() == pack.pdf.read_bytes()
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert pack.content_sha256 in body and "FALLS-02" in body
    again = send_pack(pack, PROTOCOL, tmp_path / "reports")
    assert again.status == "already_sent" and len(smtp_server.messages) == 1, "the same release content is mailed once"


def test_without_smtp_settings_nothing_is_sent_and_the_result_says_so(built, monkeypatch, tmp_path):
    from orchestration.partnership.boardpack.mail import MailNotConfigured, send_pack

    monkeypatch.delenv("PARTNERSHIP_SMTP_HOST", raising=False)
    _, pack = built
    assert send_pack(pack, PROTOCOL, tmp_path).status == "not_configured"
    with pytest.raises(MailNotConfigured):
        send_pack(pack, PROTOCOL, tmp_path, required=True)


def test_the_data_quality_panel_names_late_rejected_and_over_tolerance_deliveries_in_the_period(built):
    _, pack = built
    html = pack.html.read_text()
    dq = {(e["contract"]): e for a in json.loads((pack.html.parent / "data_quality.json").read_text())["agencies"]
          for e in a["extracts"]}
    assert dq["county_ambulance__incidents"]["late"] == 1 and dq["county_ambulance__incidents"]["max_minutes_late"] == 102
    assert dq["riverside_fire__safe_and_well_visits"]["rejected"] == 1
    assert dq["riverside_fire__safe_and_well_visits"]["rejected_reasons"] == {"encoding": 1}
    assert dq["riverside_acute__ae_attendances"]["over_tolerance"] == 1
    assert dq["riverside_council__housing_adaptations"]["rejected"] == 0, "a rejection before the period is not reported"
    assert "County Police" not in html, "an agency outside the protocol is not reported"
    assert "County Ambulance Service, incidents attended: 1 delivery late (due by 06:00; up to 1 h 42 min late)." in html
    assert "Riverside Fire &amp; Rescue, safe and well visits: 1 delivery rejected (encoding ×1)" in html
    assert "Riverside Acute Trust, A&amp;E attendances: 1 delivery with quarantined rows above the contract" in html


def test_the_data_quality_panel_counts_the_deliveries_overdue_and_the_extracts_never_delivered(built):
    _, pack = built
    html = pack.html.read_text()
    dq = {(e["contract"]): e for a in json.loads((pack.html.parent / "data_quality.json").read_text())["agencies"]
          for e in a["extracts"]}
    # As at noon on 28 November: the nightly files covering 27 November were due at 06:00 and never came;
    # the weekly fire file of 22 November is followed by one due on 29 November, not yet due; Age Well
    # never delivered at all.
    assert dq["county_ambulance__incidents"]["overdue"] == 1 and dq["riverside_acute__ae_attendances"]["overdue"] == 1
    assert dq["riverside_fire__safe_and_well_visits"]["overdue"] == 0
    assert dq["riverside_agewell__falls_class_referrals"]["overdue"] == 1
    assert "Riverside Age Well, falls prevention class referrals: 1 monthly delivery overdue (due by 06:00, not arrived)." in html
    agewell = html[html.index('data-agency="riverside_agewell"'):]
    agewell = agewell[:agewell.index("</tr>")]
    assert 'data-field="overdue">1<' in agewell and "no issues" not in agewell


def test_a_night_that_leaves_the_release_unchanged_renders_and_mails_nothing(tmp_path, smtp_server, monkeypatch,
                                                                            statistics_functions):
    import orchestration.partnership.boardpack.build as build
    warehouse, releases, reports = tmp_path / "warehouse.duckdb", tmp_path / "releases", tmp_path / "reports"
    _write_warehouse(warehouse, statistics_functions)
    night = lambda on: (release(warehouse, releases, PROTOCOL, on, reports_dir=reports),  # noqa: E731
                        build.refresh_pack(reports, releases, PROTOCOL, on))
    first, (pack, mail) = night(RELEASE_DATE)
    assert (first.status, pack.status, mail.status) == ("published", "built", "sent") and len(smtp_server.messages) == 1
    pdf_time = pack.pdf.stat().st_mtime_ns

    renders = []
    real_build = build.build_pack
    monkeypatch.setattr(build, "build_pack", lambda *a, **k: renders.append(a[0]) or real_build(*a, **k))
    second, (pack2, mail2) = night(RELEASE_DATE + timedelta(days=1))
    assert second.status == "unchanged" and second.path == first.path
    assert (pack2.status, pack2.pdf, mail2.status) == ("current", pack.pdf, "already_sent")
    assert renders == [] and pack2.pdf.stat().st_mtime_ns == pdf_time and len(smtp_server.messages) == 1

    pack.pdf.unlink()  # the current release has no pack: it is built again, and not mailed twice
    third, (pack3, mail3) = night(RELEASE_DATE + timedelta(days=2))
    assert (third.status, pack3.status, mail3.status) == ("unchanged", "built", "already_sent")
    assert renders == [first.path] and pack3.pdf.read_bytes()[:5] == b"%PDF-" and len(smtp_server.messages) == 1

    with duckdb.connect(str(warehouse)) as con:  # a new quarter changes the release: a new pack, mailed once
        # (figures already sent are held as first sent, so only cells never sent can change a release)
        con.execute("""insert into marts.fct_indicator_values
            select indicator_id, period_type, cast(period_start + interval 3 month as date),
                   cast(period_start + interval 6 month - interval 1 day as date), geography_type, geography_code,
                   geography_name, breakdown, numerator, denominator, value, lower_ci, upper_ci, unit
            from marts.fct_indicator_values where period_start = (select max(period_start) from marts.fct_indicator_values)""")
    day4 = RELEASE_DATE + timedelta(days=3)
    fourth, (pack4, mail4) = night(day4)
    assert (fourth.status, fourth.path.name, pack4.status, mail4.status) == ("published", day4.isoformat(), "built", "sent")
    assert len(smtp_server.messages) == 2 and pack4.content_sha256 != pack.content_sha256
    body = message_from_bytes(smtp_server.messages[1][2], policy=policy.default).get_body(preferencelist=("plain",)).get_content()
    assert pack4.content_sha256 in body


def test_charts_from_the_cache_make_the_same_page_without_converting_again(built, tmp_path, monkeypatch):
    import time

    import orchestration.partnership.boardpack.charts as charts
    from orchestration.partnership.boardpack.render import render_html

    _, pack = built
    fresh = render_html(pack.pack)  # no cache: every chart converted by vl-convert
    cache = tmp_path / "charts"
    assert render_html(pack.pack, cache) == fresh
    kept = sorted(cache.glob("*.svg"))
    assert len(kept) >= 2 * len(INDICATORS)
    calls = []
    real = charts.vlc.vegalite_to_svg
    monkeypatch.setattr(charts.vlc, "vegalite_to_svg", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert render_html(pack.pack, cache) == fresh and calls == []  # every chart from the cache
    kept[0].write_text("<svg")  # not a whole SVG: converted again and replaced
    assert render_html(pack.pack, cache) == fresh and len(calls) == 1
    assert kept[0].read_text().rstrip().endswith("</svg>")
    unused = time.time() - (charts.CACHE_DAYS + 1) * 86400
    os.utime(kept[1], (unused, unused))
    assert charts.prune_cache(cache) == 1 and not kept[1].exists() and kept[0].exists()


def test_a_chromium_started_earlier_prints_the_next_packs_and_one_that_fails_is_replaced(built, tmp_path, monkeypatch):
    import shutil
    import time

    import orchestration.partnership.boardpack.pdf as pdf
    folder, _ = built
    copies = []
    for name in ("a", "b"):
        copies.append(tmp_path / name)
        shutil.copytree(folder, copies[-1])
        for f in ("board_pack.html", "board_pack.pdf"):
            (copies[-1] / f).unlink()
    pdf.warm()  # as the release asset does when its pack follows in the run
    warm = pdf._kept[0]
    first = build_pack(copies[0], PROTOCOL)
    assert first.status == "built" and first.pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf._kept[0] is warm  # printed with the Chromium started earlier, kept for the next pack
    real, failed = pdf._print, []
    monkeypatch.setattr(pdf, "_print", lambda *a: failed.append(1) or (real(*a) if len(failed) > 1 else 1 / 0))
    second = build_pack(copies[1], PROTOCOL)  # the kept one fails: printed by a new one
    assert second.status == "built" and second.pdf.read_bytes()[:5] == b"%PDF-" and len(failed) == 2
    replacement = pdf._kept[0]
    assert replacement is not warm and not warm._thread.is_alive()
    monkeypatch.setattr(pdf, "IDLE_SECONDS", 0.1)
    pdf.give_back(pdf.take()[0])  # unused for IDLE_SECONDS: closed
    deadline = time.monotonic() + 30  # closing Chromium takes longer on a loaded machine
    while (pdf._kept is not None or replacement._thread.is_alive()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pdf._kept is None and not replacement._thread.is_alive()
