"""The PDF of a pack: the same HTML printed by headless Chromium (the Debian package), offline."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_ENV = "PARTNERSHIP_CHROMIUM"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-extensions", "--disable-default-apps"]


class ChromiumMissing(RuntimeError):
    pass


def chromium_path() -> str:
    """`PARTNERSHIP_CHROMIUM`, else Debian's /usr/bin/chromium. Playwright never downloads a browser here."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise ChromiumMissing(f"headless Chromium not found at {path}: install the Debian package `chromium` "
                              f"(`make system-deps`) or set {CHROMIUM_ENV}")
    return path


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)


def _footer(text: str) -> str:
    from html import escape

    return ('<div style="font-family: DejaVu Sans, sans-serif; font-size: 6.5pt; color: #444; width: 100%; '
            'padding: 0 12mm; display: flex; justify-content: space-between;">'
            f'<span>{escape(text)}</span><span style="white-space: nowrap; padding-left: 4mm;">page <span class="pageNumber"></span> of <span class="totalPages"></span></span></div>')


def print_pdf(html: str, dest: Path, footer: str) -> None:
    """Print `html` to `dest` (A4). Every network request is refused: the page must not need one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("data:", "about:"))
                       else route.continue_())
            page.set_content(html, wait_until="load")
            page.emulate_media(media="print")
            page.pdf(path=str(dest), format="A4", print_background=True, prefer_css_page_size=True,
                     display_header_footer=True, header_template="<div></div>", footer_template=_footer(footer),
                     margin={"top": "14mm", "bottom": "18mm", "left": "12mm", "right": "12mm"})
        finally:
            browser.close()
