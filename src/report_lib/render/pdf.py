"""Rendered report HTML -> PDF with headless Chromium (Debian's /usr/bin/chromium), charts included.

One browser process per call today; ``browser`` also accepts any object with ``print_pdf(html_path, pdf_path)``
so a persistent per-worker browser (CDP/playwright) can slot in later without changing callers.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from report_lib.errors import BrowserNotFoundError, RenderError
from report_lib.files import replace_atomic

log = logging.getLogger(__name__)

BROWSER_ENV = "REPORT_CHROMIUM"
BROWSER_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Without these, Chromium's background connections hang on the closed network and it writes profile state around.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)
# Charts are drawn once, at load, for the window's width: keep it below A4 less the 12 mm margins (703 px), or
# the right edge of every chart is cut off in the PDF.
PRINT_WINDOW = "--window-size=700,1000"
DRAW_BUDGET_MS = 15_000  # virtual time for scripts (plotly) to draw before printing
DEFAULT_TIMEOUT_S = 120.0


@runtime_checkable
class PdfPrinter(Protocol):
    """Something that prints an HTML file to a PDF file (a persistent browser, for instance)."""

    def print_pdf(self, html_path: Path, pdf_path: Path) -> None: ...


def find_browser() -> str | None:
    """The Chromium executable to use: $REPORT_CHROMIUM, else the first candidate on this machine, else None."""
    configured = os.environ.get(BROWSER_ENV, "").strip()
    candidates: Sequence[str] = (configured,) if configured else BROWSER_CANDIDATES
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _require_browser(browser: str | Path | None) -> str:
    found = str(browser) if browser is not None else find_browser()
    if found is None or shutil.which(found) is None:
        raise BrowserNotFoundError(
            f"No Chromium found (looked for {found or ', '.join(BROWSER_CANDIDATES)}), so PDF output is skipped. "
            f"Install Debian's chromium package (make setup does) or set {BROWSER_ENV} to a Chromium executable."
        )
    return found


def chromium_command(executable: str, html_path: Path, pdf_path: Path, profile_dir: Path) -> list[str]:
    """The command line that prints ``html_path`` to ``pdf_path`` (no header/footer, charts drawn first)."""
    return [
        executable,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile_dir}",
        PRINT_WINDOW,
        "--run-all-compositor-stages-before-draw",
        f"--virtual-time-budget={DRAW_BUDGET_MS}",
        "--no-pdf-header-footer",
        f"--print-to-pdf={pdf_path}",
        html_path.resolve().as_uri(),
    ]


def html_to_pdf(
    html_path: Path,
    pdf_path: Path,
    *,
    browser: str | Path | PdfPrinter | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Print a rendered report page to ``pdf_path`` (written atomically); returns ``pdf_path``.

    Raises:
        BrowserNotFoundError: no Chromium here (callers skip the PDF and say so).
        RenderError: the HTML is missing, or Chromium failed, timed out or wrote no PDF.
    """
    if not html_path.is_file():
        raise RenderError(f"Cannot print {html_path} to PDF: the file does not exist. Render the HTML first.")
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-pdf-", dir=pdf_path.parent) as work:
        temp_pdf = Path(work) / "out.pdf"
        started = time.perf_counter()
        if isinstance(browser, PdfPrinter):
            browser.print_pdf(html_path, temp_pdf)
        else:
            _print_with_chromium(_require_browser(browser), html_path, temp_pdf, Path(work) / "profile", timeout)
        _check_pdf(temp_pdf, html_path)
        replace_atomic(temp_pdf, pdf_path)
    log.info("printed %s in %.1f s", pdf_path, time.perf_counter() - started)
    return pdf_path


def _print_with_chromium(executable: str, html_path: Path, pdf_path: Path, profile: Path, timeout: float) -> None:
    command = chromium_command(executable, html_path, pdf_path, profile)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(
            f"Chromium did not finish printing {html_path} within {timeout:.0f} s; expected a few seconds a page. "
            "Check that the page does not load remote resources, or raise the timeout."
        ) from exc
    except OSError as exc:
        raise RenderError(f"Could not start Chromium ({executable}): {exc}. Check the installation.") from exc
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise RenderError(
            f"Chromium exited with code {result.returncode} printing {html_path}: {tail or '(no output)'}. "
            "Expected exit code 0; run the command by hand to see the full log."
        )


def _check_pdf(pdf_path: Path, html_path: Path) -> None:
    if not pdf_path.is_file() or pdf_path.read_bytes()[:5] != b"%PDF-":
        raise RenderError(
            f"Chromium reported success but wrote no PDF for {html_path}; expected a file starting with %PDF-. "
            "Check the disk space and that the HTML opens in a browser."
        )
