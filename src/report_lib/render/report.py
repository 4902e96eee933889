"""One executed notebook -> its report files beside it: ``<notebook>.html`` and ``<notebook>.pdf``.

The runner calls ``render_outputs`` after papermill; output formats are a closed set here (``html``, ``pdf``).
Without a browser the PDF is skipped with a warning that says how to get one; every other failure raises.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from report_lib.errors import BrowserNotFoundError, ReportNotFoundError
from report_lib.render.html import render_html
from report_lib.render.pdf import PdfPrinter, html_to_pdf

log = logging.getLogger(__name__)

OUTPUT_FORMATS = ("html", "pdf")


def render_outputs(
    executed: Path,
    *,
    formats: Sequence[str] = OUTPUT_FORMATS,
    title: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    browser: str | Path | PdfPrinter | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, str]:
    """Write the requested formats next to ``executed`` (same name, new suffix); returns format -> path written.

    A PDF alone still needs the HTML: it is rendered into a temporary folder and removed afterwards. ``browser``
    prints the PDF (a persistent one from ``report_lib.render.browser.worker_printer()``, or a Chromium executable,
    or None: Chromium started for this PDF). ``timings``, when given, receives the seconds spent per format.

    Raises:
        ReportNotFoundError: an unknown format. RenderError: the HTML or PDF could not be made.
    """
    for name in formats:
        if name not in OUTPUT_FORMATS:
            raise ReportNotFoundError("output format", name, OUTPUT_FORMATS)
    written: dict[str, str] = {}
    seconds = timings if timings is not None else {}
    started = time.perf_counter()
    if "html" in formats:
        html = render_html(executed, executed.with_suffix(".html"), title=title, defaults=defaults)
        written["html"] = str(html)
        seconds["html"] = time.perf_counter() - started
        if "pdf" in formats:
            _pdf(html, executed.with_suffix(".pdf"), browser, written, seconds)
    elif "pdf" in formats:
        with tempfile.TemporaryDirectory(prefix=".render-", dir=executed.parent) as work:
            temporary = Path(work) / executed.with_suffix(".html").name
            html = render_html(executed, temporary, title=title, defaults=defaults)
            seconds["html"] = time.perf_counter() - started
            _pdf(html, executed.with_suffix(".pdf"), browser, written, seconds)
    return written


def _pdf(
    html: Path, pdf: Path, browser: str | Path | PdfPrinter | None, written: dict[str, str], seconds: dict[str, float]
) -> None:
    started = time.perf_counter()
    try:
        written["pdf"] = str(html_to_pdf(html, pdf, browser=browser))
    except BrowserNotFoundError as exc:
        log.warning("%s: %s", pdf.name, exc)
    seconds["pdf"] = time.perf_counter() - started
