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


def _print(browser, html: str, dest: Path, footer: str) -> None:
    """Print `html` to `dest` (A4). Every network request is refused: the page must not need one."""
    page = browser.new_page()
    try:
        page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("data:", "about:"))
                   else route.continue_())
        page.set_content(html, wait_until="load")
        page.emulate_media(media="print")
        page.pdf(path=str(dest), format="A4", print_background=True, prefer_css_page_size=True,
                 display_header_footer=True, header_template="<div></div>", footer_template=_footer(footer),
                 margin={"top": "14mm", "bottom": "18mm", "left": "12mm", "right": "12mm"})
    finally:
        page.close()


class Printer:
    """Headless Chromium started now, in a thread of its own, so that it starts (the Playwright
    driver, the browser: a second or two) while the caller renders the page; `print` then waits
    for it. Playwright's sync API stays in the thread that started it: every call to the browser
    is made there. A failure to start is raised by the first `print`, not before."""

    def __init__(self) -> None:
        import queue
        import threading

        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="board-pack-chromium", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as p:
                browser = launch(p)
                try:
                    while (job := self._jobs.get()) is not None:
                        html, dest, footer, done = job
                        try:
                            _print(browser, html, dest, footer)
                            done.set_result(None)
                        except BaseException as exc:
                            done.set_exception(exc)
                finally:
                    browser.close()
        except BaseException as exc:  # did not start (or the driver died): every job waiting or to come fails with it
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                job[3].set_exception(exc)

    def print(self, html: str, dest: Path, footer: str) -> None:
        from concurrent.futures import Future

        done: Future = Future()
        self._jobs.put((html, dest, footer, done))
        done.result()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()

    def __enter__(self) -> "Printer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
