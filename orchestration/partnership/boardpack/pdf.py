"""The PDF of a pack: the same HTML printed by headless Chromium (the Debian package), offline."""

from __future__ import annotations

import atexit
import os
import shutil
import threading
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
                 # Tagged (structure for screen readers) and with an outline (bookmarks) from the headings.
                 tagged=True, outline=True,
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
        self._closed = False
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

        if self._closed:
            raise RuntimeError("this Chromium printer is closed")
        done: Future = Future()
        self._jobs.put((html, dest, footer, done))
        done.result()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        self._thread.join()

    def __enter__(self) -> "Printer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------ one Chromium for a night's packs

# A started Chromium not taken by a pack within this many seconds is closed.
IDLE_SECONDS = 60.0
_kept: tuple[Printer, object] | None = None  # (printer, its idle timer)
_kept_lock = threading.Lock()


def _keep(printer: Printer) -> None:
    """Keep `printer` for the next pack of this process, closing it after `IDLE_SECONDS` unused."""
    global _kept
    timer = threading.Timer(IDLE_SECONDS, _close_kept, args=(printer,))
    timer.daemon = True
    with _kept_lock:
        previous, _kept = _kept, (printer, timer)
    timer.start()
    if previous is not None:
        previous[1].cancel()
        if previous[0] is not printer:
            previous[0].close()


def _close_kept(printer: Printer | None = None) -> None:
    """Close the kept printer (only if it is still `printer`, when given)."""
    global _kept
    with _kept_lock:
        if _kept is None or (printer is not None and _kept[0] is not printer):
            return
        (kept, timer), _kept = _kept, None
    timer.cancel()
    kept.close()


def warm() -> None:
    """Start Chromium now for a pack this process is about to build (the night's board-pack assets
    run after the releases): it starts while other work runs, instead of on the pack's clock. A
    printer already kept is kept (its idle clock starts again)."""
    with _kept_lock:
        kept = _kept[0] if _kept is not None else None
    _keep(kept if kept is not None else Printer())


def take() -> tuple[Printer, bool]:
    """A printer for one pack: the one kept (started earlier, True), else a new one (False).
    Give it back with `give_back` when the pack is printed; close it if printing failed."""
    global _kept
    with _kept_lock:
        kept, _kept = _kept, None
    if kept is None:
        return Printer(), False
    kept[1].cancel()
    return kept[0], True


def give_back(printer: Printer) -> None:
    """Keep a printer that printed for the next pack (closed after `IDLE_SECONDS` unused)."""
    _keep(printer)


atexit.register(_close_kept)
