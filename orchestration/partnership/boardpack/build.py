"""Build a board pack into its release folder: HTML first, then the PDF of that HTML."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..protocols import Protocol
from . import model
from .pdf import print_pdf
from .render import render_html

HTML_FILE = "board_pack.html"
PDF_FILE = "board_pack.pdf"


@dataclass(frozen=True)
class PackResult:
    protocol_id: str
    release_date: date
    status: str  # built | unchanged
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


def build_pack(release_dir: Path, protocol: Protocol, force: bool = False) -> PackResult:
    """Write board_pack.html and board_pack.pdf into `release_dir`. An unchanged page is not printed again."""
    release_dir = Path(release_dir)
    pack = model.load(release_dir, protocol)
    html = render_html(pack)
    html_path, pdf_path = release_dir / HTML_FILE, release_dir / PDF_FILE
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
        print_pdf(html, tmp_pdf, footer)
        os.replace(tmp_pdf, pdf_path)  # the PDF first: a page without its PDF is never left newer
        os.replace(tmp_html, html_path)
    finally:
        tmp_html.unlink(missing_ok=True)
        tmp_pdf.unlink(missing_ok=True)
    return PackResult(status="built", **result)
