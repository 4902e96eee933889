"""One headless Chromium kept open per worker process (playwright driving Debian's Chromium) to print report PDFs.

Starting Chromium for each ``--print-to-pdf`` costs ~2.5 s a report; with the browser kept open a print is a page
load in the same tab and the print itself. The page printed is a copy that loads plotly.js from one file rather than
inline: V8 then compiles its 4.8 MB once per browser instead of once per report (measured: 0.4-1.4 s a PDF instead
of 1.6-3.5 s, and ~200 MB less renderer memory after 32 reports).

``PersistentBrowser`` implements ``report_lib.render.pdf.PdfPrinter``, so ``html_to_pdf(html, pdf,
browser=worker_printer())`` uses it. The page is printed the way the command line prints it
(``report_lib.render.pdf.chromium_command``): a 700 px wide window so charts are drawn at print width, A4 pages from
the template's ``@page`` rule, no header or footer, charts drawn before printing.

Per process, created on first use (``worker_printer``) and replaced after ``max_pages`` prints or after a failure.
playwright's sync API belongs to the thread that started it and allows one driver per thread: each thread gets its
own browser, and the browsers of one thread share its driver.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from report_lib.errors import BrowserNotFoundError, RenderError
from report_lib.render.html import plotly_js
from report_lib.render.pdf import BROWSER_ENV, CHROMIUM_FLAGS, find_browser

log = logging.getLogger(__name__)

LAUNCH_ARGS = tuple(flag for flag in CHROMIUM_FLAGS if flag != "--headless")  # playwright adds its own
PRINT_VIEWPORT = {"width": 700, "height": 1000}  # as pdf.PRINT_WINDOW: charts drawn narrower than A4's text width
# Every plotly chart on the page has drawn its SVG (the command line waits a virtual-time budget instead).
CHARTS_DRAWN = (
    "() => Array.from(document.querySelectorAll('.plotly-graph-div'))"
    ".every(div => div.querySelector('.main-svg') !== null)"
)
DEFAULT_MAX_PAGES = 500
TAB_PAGES = 16  # measured over 32 reports: renderer ~210 MB instead of ~340 MB, one more plotly.js compile per 16
DEFAULT_TIMEOUT_S = 60.0


class PersistentBrowser:
    """A headless Chromium started on first use and kept open; ``print_pdf`` prints one report page."""

    def __init__(
        self,
        executable: str | None = None,
        *,
        max_pages: int = DEFAULT_MAX_PAGES,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.executable = executable
        self.max_pages = max_pages
        self.timeout = timeout
        self.pages = 0
        self.owner = (os.getpid(), threading.get_ident())
        self._playwright: Any = None
        self._browser: Any = None
        self._page: Any = None  # one tab, navigated from report to report
        self._library: Path | None = None  # plotly.js as a file, for the pages printed

    def __enter__(self) -> PersistentBrowser:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def started(self) -> bool:
        return self._browser is not None

    def start(self) -> None:
        """Launch Chromium (done by the first ``print_pdf``); raises BrowserNotFoundError or RenderError."""
        if self._browser is not None:
            return
        executable = self.executable or find_browser()
        if executable is None:
            raise BrowserNotFoundError(
                "No Chromium found, so PDF output is skipped. Install Debian's chromium package (make setup does) "
                f"or set {BROWSER_ENV} to a Chromium executable."
            )
        started = time.perf_counter()
        try:
            self._playwright = _acquire_driver()
            self._browser = self._playwright.chromium.launch(
                executable_path=executable, args=list(LAUNCH_ARGS), headless=True, timeout=self.timeout * 1000
            )
        except Exception as exc:  # playwright raises its own Error and driver errors
            self.close()
            raise RenderError(
                f"Could not start headless Chromium ({executable}) through playwright: {type(exc).__name__}: {exc}. "
                "Check that `chromium --headless` runs on this machine (runner.py health)."
            ) from exc
        log.info("browser started in %.1f s (%s)", time.perf_counter() - started, executable)

    def print_pdf(self, html_path: Path, pdf_path: Path) -> None:
        """Print ``html_path`` to ``pdf_path`` in the browser's one tab. A failed print closes the browser and is
        tried once more in a new one (a tab or browser that crashed earlier); a second failure raises RenderError."""
        try:
            self._print(html_path, pdf_path)
        except BrowserNotFoundError:
            raise
        except RenderError as exc:
            log.warning("printing %s failed, trying once more in a new browser: %s", html_path.name, exc)
            self._print(html_path, pdf_path)

    def _print(self, html_path: Path, pdf_path: Path) -> None:
        self.start()
        copy = self._print_copy(html_path)
        try:
            if self._page is not None and self.pages and self.pages % TAB_PAGES == 0:
                self._page.close()  # a new tab now and then: the renderer's memory grows with every page
                self._page = None
            if self._page is None:
                self._page = self._browser.new_page(viewport=PRINT_VIEWPORT)
            self._page.goto((copy or html_path).resolve().as_uri(), wait_until="load", timeout=self.timeout * 1000)
            self._page.wait_for_function(CHARTS_DRAWN, timeout=self.timeout * 1000)
            self._page.pdf(path=str(pdf_path), prefer_css_page_size=True, display_header_footer=False)
        except Exception as exc:  # playwright's Error and TimeoutError, or a browser that died
            self.close()
            raise RenderError(
                f"The browser could not print {html_path} to PDF: {type(exc).__name__}: {exc}. Expected the report "
                "page to load offline and its charts to draw within "
                f"{self.timeout:.0f} s; open the HTML in a browser to check it."
            ) from exc
        finally:
            if copy is not None:
                copy.unlink(missing_ok=True)
        self.pages += 1
        if self.pages >= self.max_pages:
            log.info("recycling the browser after %d pages", self.pages)
            self.close()

    def _print_copy(self, html_path: Path) -> Path | None:
        """A hidden copy of the page beside it that loads plotly.js from one file instead of inline, or None when
        the page does not inline it. V8 keeps a script compiled per source *and* URL: inline, plotly.js's 4.8 MB are
        compiled again for every report (~2 s here); from one URL, once per browser."""
        html = html_path.read_text(encoding="utf-8")
        inline = f'<script type="text/javascript">{plotly_js()}</script>'
        if inline not in html:
            return None
        if self._library is None:
            self._library = Path(tempfile.mkdtemp(prefix="report-browser-")) / "plotly.min.js"
            self._library.write_text(plotly_js(), encoding="utf-8")
        external = f'<script type="text/javascript" src="{self._library.as_uri()}"></script>'
        copy = html_path.with_name(f".{html_path.stem}.print{html_path.suffix}")
        copy.write_text(html.replace(inline, external, 1), encoding="utf-8")
        return copy

    def close(self) -> None:
        """Close the browser and playwright's driver; never raises. The next print starts them again."""
        browser, playwright, self._browser, self._playwright = self._browser, self._playwright, None, None
        self._page = None
        self.pages = 0
        if self._library is not None:
            shutil.rmtree(self._library.parent, ignore_errors=True)
            self._library = None
        try:
            if browser is not None:
                browser.close()
        except Exception as exc:  # already gone, or closed from another thread at exit
            log.debug("closing the browser: %s", exc)
        if playwright is not None:
            _release_driver()


_DRIVERS = threading.local()  # playwright's sync API allows one driver per thread: browsers of a thread share it


def _acquire_driver() -> Any:
    if getattr(_DRIVERS, "playwright", None) is None:
        from playwright.sync_api import sync_playwright  # heavy: loads only where PDFs are printed

        _DRIVERS.playwright = sync_playwright().start()
        _DRIVERS.users = 0
    _DRIVERS.users += 1
    return _DRIVERS.playwright


def _release_driver() -> None:
    _DRIVERS.users = getattr(_DRIVERS, "users", 1) - 1
    playwright = getattr(_DRIVERS, "playwright", None)
    if _DRIVERS.users > 0 or playwright is None:
        return
    _DRIVERS.playwright = None
    try:
        playwright.stop()
    except Exception as exc:  # the driver is already gone
        log.debug("stopping playwright: %s", exc)


_WORKER = threading.local()
_ALL: list[PersistentBrowser] = []  # every browser of this process, closed at exit


def worker_printer() -> PersistentBrowser | None:
    """This thread's persistent browser for PDFs (started on first print), or None when no Chromium is installed
    (``html_to_pdf`` then reports the missing browser as before)."""
    if find_browser() is None:
        return None
    printer: PersistentBrowser | None = getattr(_WORKER, "printer", None)
    if printer is None or printer.owner != (os.getpid(), threading.get_ident()):
        printer = PersistentBrowser()  # none yet, or inherited through fork: never use the parent's
        _WORKER.printer = printer
        _ALL.append(printer)
    return printer


def close_worker_browsers() -> None:
    """Close the browsers this process started (at exit, and for tests)."""
    pid = os.getpid()
    for printer in [p for p in _ALL if p.owner[0] == pid]:
        if printer.owner[1] == threading.get_ident():
            printer.close()
        _ALL.remove(printer)
    _WORKER.__dict__.clear()


atexit.register(close_worker_browsers)
# multiprocessing workers leave through os._exit, which skips atexit; their finalizers still run.
multiprocessing.util.Finalize(None, close_worker_browsers, exitpriority=10)
