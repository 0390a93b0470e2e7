"""Write the register: `reports/register/index.html`, and `<protocol>.html` and `.pdf` for each agreement.

Owner-only (folder 0700, files 0600): the pages name the parties' signatories and the data items.
Each file is written whole under a temporary name, then renamed. A page whose HTML is unchanged
is not printed again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.register.history import read_history
from orchestration.partnership.register.lineage import read_models
from orchestration.partnership.register.render import render_index, render_page
from orchestration.partnership.register.state import Standing, standings
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.settings import Settings

REGISTER_DIR = "register"
_PAGE = re.compile(r"^[a-z0-9][a-z0-9-]*\.(html|pdf)$")


@dataclass(frozen=True)
class RegisterResult:
    folder: Path
    standings: list[Standing]
    printed: list[str]  # protocol ids whose PDF was printed this time

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.standings for w in s.warnings]


def register_dir(settings: Settings) -> Path:
    return settings.reports_dir / REGISTER_DIR


def _write(path: Path, data: bytes) -> bool:
    """Write `path` owner-only unless it holds these bytes already; whether it was written."""
    if path.is_file() and path.read_bytes() == data:
        os.chmod(path, 0o600)
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _is_pdf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(5) == b"%PDF-"
    except FileNotFoundError:
        return False


def write_register(settings: Settings, on: date, protocols: dict[str, Protocol], contracts: dict[str, Contract],
                   pdf: bool = True) -> RegisterResult:
    """The register as it stands on `on`. `pdf`: print each changed page (headless Chromium)."""
    folder = register_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    found = standings(protocols, on, contracts, read_models(settings.dbt_project_dir))
    histories = read_history(settings.warehouse_path, settings.releases_dir)
    to_print = []
    for s in found:
        html = render_page(s, contracts, histories.get(s.protocol.id)).encode("utf-8")
        page = folder / f"{s.protocol.id}.html"
        changed = _write(page, html)
        if pdf and (changed or not _is_pdf(folder / f"{s.protocol.id}.pdf")):
            to_print.append((s, html.decode("utf-8")))
        elif changed:
            (folder / f"{s.protocol.id}.pdf").unlink(missing_ok=True)  # never a PDF that says other than its page
    printed = _print(folder, to_print) if to_print else []
    with_pdf = {pid for pid in protocols if _is_pdf(folder / f"{pid}.pdf")}
    _write(folder / "index.html", render_index(found, histories, with_pdf).encode("utf-8"))
    keep = {"index.html", *(f"{pid}.{ext}" for pid in protocols for ext in ("html", "pdf"))}
    for old in folder.iterdir():
        if _PAGE.match(old.name) and old.name not in keep:
            old.unlink()  # the page of a protocol file no longer there
    return RegisterResult(folder, found, printed)


def _print(folder: Path, pages: list[tuple[Standing, str]]) -> list[str]:
    """Print the pages with the process's kept Chromium (the board packs' printer), PDF by PDF."""
    import orchestration.partnership.boardpack.pdf as pdf

    printer, _ = pdf.take()
    printed, healthy = [], False
    try:
        for s, html in pages:
            p = s.protocol
            dest = folder / f"{p.id}.pdf"
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            try:
                printer.print(html, tmp, f"{p.doc['title']} · agreement {p.id} v{p.version} · "
                                         f"text sha256 {p.text_sha256}")
                os.chmod(tmp, 0o600)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            printed.append(p.id)
        healthy = True
    finally:
        if healthy:
            pdf.give_back(printer)
        else:
            printer.close()
    return printed
