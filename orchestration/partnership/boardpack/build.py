"""Build a board pack into its release folder: HTML first, then the PDF of that HTML.

A night whose release did not change renders nothing (`refresh_pack`): the pack already in the
release folder is current."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orchestration.partnership.boardpack.model as model
from orchestration.partnership.releases.protocols import Protocol

CHART_CACHE = "cache/board_pack_charts"
HTML_FILE = "board_pack.html"
PDF_FILE = "board_pack.pdf"


@dataclass(frozen=True)
class PackResult:
    protocol_id: str
    release_date: date
    status: str  # built | unchanged (the page was the same: not printed again) | current (its release did not change)
    html: Path
    pdf: Path
    content_sha256: str  # the release's
    html_sha256: str
    pack: model.Pack


def release_dir_for(releases_dir: Path, protocol_id: str, on: date | None = None) -> Path:
    """The release folder of `protocol_id` on `on`, else its latest one."""
    root = Path(releases_dir) / protocol_id
    if on is not None:
        folder = root / on.isoformat()
        if not (folder / "manifest.json").exists():
            raise model.PackError(f"no published release of {protocol_id} for {on.isoformat()} in {root}")
        return folder
    dated = sorted(p for p in root.glob("????-??-??") if (p / "manifest.json").exists()) if root.exists() else []
    if not dated:
        raise model.PackError(f"no published release of {protocol_id} in {root}")
    return dated[-1]


def build_pack(release_dir: Path, protocol: Protocol, force: bool = False, chart_cache: Path | None = None) -> PackResult:
    """Write board_pack.html and board_pack.pdf into `release_dir`. An unchanged page is not printed again.
    `chart_cache`: a folder keeping converted charts between packs and nights (`charts.to_svg`)."""
    import orchestration.partnership.boardpack.charts as charts
    import orchestration.partnership.boardpack.pdf as pdf
    from orchestration.partnership.boardpack.render import render_html

    release_dir = Path(release_dir)
    pack = model.load(release_dir, protocol)
    html_path, pdf_path = release_dir / HTML_FILE, release_dir / PDF_FILE
    # Chromium starts while the page and its charts render (or was started earlier by `pdf.warm`,
    # or for the process's previous pack), unless the pack in place is this release's (its page
    # names the release's content hash): then the page is likely unchanged and not printed; when
    # it did change after all, Chromium starts once it is known.
    likely_current = (not force and html_path.is_file() and pdf_path.is_file()
                      and pack.manifest["content_sha256"].encode() in html_path.read_bytes())
    printer, reused = (None, False) if likely_current else pdf.take()
    healthy = True
    try:
        html = render_html(pack, chart_cache)
        if chart_cache is not None:
            charts.prune_cache(chart_cache)
        digest = hashlib.sha256(html.encode()).hexdigest()
        result = dict(protocol_id=protocol.id, release_date=pack.release_date, html=html_path, pdf=pdf_path,
                      content_sha256=pack.manifest["content_sha256"], html_sha256=digest, pack=pack)
        if not force and pdf_path.exists() and html_path.exists() and html_path.read_bytes() == html.encode():
            return PackResult(status="unchanged", **result)
        tmp_html = html_path.with_name(f".{HTML_FILE}.{os.getpid()}.tmp")
        tmp_pdf = pdf_path.with_name(f".{PDF_FILE}.{os.getpid()}.tmp")
        try:
            tmp_html.write_text(html, encoding="utf-8")
            footer = (f"{protocol.doc['title']} · release {pack.release_date.isoformat()} · "
                      f"content sha256 {pack.manifest['content_sha256']}")
            if printer is None:
                printer, reused = pdf.take()
            healthy = False  # until it has printed
            try:
                printer.print(html, tmp_pdf, footer)
            except Exception:
                if not reused:
                    raise
                # a Chromium started earlier may have gone away since: once more with a new one
                printer.close()
                printer, reused = pdf.Printer(), False
                tmp_pdf.unlink(missing_ok=True)
                printer.print(html, tmp_pdf, footer)
            healthy = True
            os.replace(tmp_pdf, pdf_path)  # the PDF first: a page without its PDF is never left newer
            os.replace(tmp_html, html_path)
        finally:
            tmp_html.unlink(missing_ok=True)
            tmp_pdf.unlink(missing_ok=True)
        return PackResult(status="built", **result)
    finally:
        if printer is not None:
            if healthy:
                pdf.give_back(printer)  # the next pack of this process prints with it (closed when idle)
            else:
                printer.close()


def current_pack(release_dir: Path, protocol: Protocol) -> PackResult | None:
    """The pack already in `release_dir`, without rendering anything, when it is there and is the
    pack of this release (its page names the release's content hash); None when it must be built."""
    release_dir = Path(release_dir)
    html_path, pdf_path = release_dir / HTML_FILE, release_dir / PDF_FILE
    if not (html_path.is_file() and pdf_path.is_file()):
        return None
    with open(pdf_path, "rb") as fh:
        if fh.read(5) != b"%PDF-":
            return None
    pack = model.load(release_dir, protocol)  # checks the release against its manifest
    html = html_path.read_bytes()
    if pack.manifest["content_sha256"].encode() not in html:
        return None
    return PackResult(protocol_id=protocol.id, release_date=pack.release_date, status="current", html=html_path,
                      pdf=pdf_path, content_sha256=pack.manifest["content_sha256"],
                      html_sha256=hashlib.sha256(html).hexdigest(), pack=pack)


def night_release(reports_dir: Path, releases_dir: Path, protocol_id: str, on: date) -> tuple[Path, bool] | None:
    """The folder of the release the night of `on` left current for `protocol_id`, and whether the
    night changed it (published) or not (unchanged: the folder may be an earlier night's), from the
    night's release report; None when the night left no release."""
    report = Path(reports_dir) / "releases" / f"{on.isoformat()}.json"
    entry = json.loads(report.read_text()).get("protocols", {}).get(protocol_id) if report.exists() else None
    if entry is None:  # no report (a release built outside the night): the dated folder, if any
        folder = Path(releases_dir) / protocol_id / on.isoformat()
        return (folder, True) if (folder / "manifest.json").exists() else None
    if entry["status"] not in ("published", "unchanged") or not entry.get("path"):
        return None
    folder = Path(entry["path"])
    return (folder, entry["status"] == "published") if (folder / "manifest.json").exists() else None


def refresh_pack(reports_dir: Path, releases_dir: Path, protocol: Protocol, on: date, chart_cache: Path | None = None):
    """A night's board pack: built (and e-mailed) when the night changed the release or its folder
    has no pack yet; otherwise the pack in place is current and nothing is rendered. A pack whose
    release content was never e-mailed (say SMTP failed) is e-mailed. Returns (pack, mail) or None."""
    from orchestration.partnership.boardpack.mail import send_pack

    found = night_release(reports_dir, releases_dir, protocol.id, on)
    if found is None:
        return None
    folder, changed = found
    pack = None if changed else current_pack(folder, protocol)
    if pack is None:
        pack = build_pack(folder, protocol, chart_cache=chart_cache)
    return pack, send_pack(pack, protocol, reports_dir)
