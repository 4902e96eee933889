"""Plotly figures (their recorded JSON) -> PNG bytes with kaleido, for email bodies that cannot run JavaScript.

A browser start costs ~3 s and each image ~0.3 s. ``figure_pngs`` draws all charts of one email in one browser;
a ``PngSession`` keeps that browser open across calls (every email of a run in one worker process). MathJax is
disabled (kaleido would fetch it from a CDN) and the browser is the one ``find_browser`` finds, the same Chromium
that prints the PDFs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any, TypeVar

from report_lib.errors import BrowserNotFoundError, RenderError
from report_lib.record import FIGURE_PREFIX
from report_lib.render.pdf import find_browser

log = logging.getLogger(__name__)

EMAIL_CHART_WIDTH = 640  # CSS pixels in the email body
EMAIL_CHART_HEIGHT = 320
EMAIL_CHART_SCALE = 2.0  # sharp on high-density screens
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_TIMEOUT_S = 60.0
T = TypeVar("T")


def record_figures(records: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The figures a notebook recorded with ``record_figure``, by name without the ``figure:`` prefix."""
    return {
        name.removeprefix(FIGURE_PREFIX): value
        for name, value in records.items()
        if name.startswith(FIGURE_PREFIX) and isinstance(value, Mapping)
    }


class PngSession:
    """One headless browser, kept open for every ``pngs`` call inside the ``with`` block; not shared by threads."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None  # runs in its own thread while the session is open
        self._thread: threading.Thread | None = None
        self._kaleido: Any = None

    def __enter__(self) -> PngSession:
        browser = find_browser()
        if browser is None:
            raise BrowserNotFoundError(
                "No Chromium found, so chart images cannot be drawn. Install Debian's chromium package (make setup "
                "does) or set REPORT_CHROMIUM to a Chromium executable."
            )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="png-session", daemon=True)
        self._thread.start()
        try:
            self._kaleido = self._run(self._open(browser))
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        engine, self._kaleido = self._kaleido, None
        try:
            if engine is not None:
                self._run(engine.close())
        finally:
            self._stop_loop()

    async def _open(self, browser: str) -> Any:
        import kaleido  # heavy: loads only when images are drawn

        engine = kaleido.Kaleido(n=1, timeout=self.timeout, mathjax=False, path=browser, enable_extensions=False)
        await engine.open()
        return engine

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coroutine.close()
            raise RenderError("The PngSession is not open; use it as `with PngSession() as session:`.")
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=self.timeout + 30)
        except Exception as exc:  # kaleido/choreographer raise their own error types and asyncio errors
            raise RenderError(
                f"Chart images failed with kaleido: {type(exc).__name__}: {exc}. Check that Chromium starts "
                "headless on this machine (runner.py health) and that the figures are plotly JSON."
            ) from exc

    def _stop_loop(self) -> None:
        loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()

    def pngs(
        self,
        figures: Mapping[str, Mapping[str, Any]],
        *,
        width: int = EMAIL_CHART_WIDTH,
        height: int = EMAIL_CHART_HEIGHT,
        scale: float = EMAIL_CHART_SCALE,
    ) -> dict[str, bytes]:
        """Every figure as PNG bytes, by the same names."""
        if self._kaleido is None:
            raise RenderError("PngSession.pngs was called outside its `with` block; open the session first.")
        opts = {"format": "png", "width": width, "height": height, "scale": scale}
        images = {}
        for name, figure in figures.items():
            png = self._run(self._kaleido.calc_fig(dict(figure), opts=opts))
            if not isinstance(png, bytes) or not png.startswith(PNG_SIGNATURE):
                raise RenderError(f"kaleido returned no PNG for figure {name!r}; expected PNG bytes.")
            images[name] = png
        return images


def figure_png(
    fig_json: Mapping[str, Any],
    width: int = EMAIL_CHART_WIDTH,
    height: int = EMAIL_CHART_HEIGHT,
    *,
    scale: float = EMAIL_CHART_SCALE,
    session: PngSession | None = None,
) -> bytes:
    """One figure as PNG bytes (without a session this starts a browser: prefer ``figure_pngs`` for several)."""
    return figure_pngs({"figure": fig_json}, width=width, height=height, scale=scale, session=session)["figure"]


def figure_pngs(
    figures: Mapping[str, Mapping[str, Any]],
    *,
    width: int = EMAIL_CHART_WIDTH,
    height: int = EMAIL_CHART_HEIGHT,
    scale: float = EMAIL_CHART_SCALE,
    session: PngSession | None = None,
) -> dict[str, bytes]:
    """Every figure as PNG bytes, by the same names, in ``session``'s browser or in one started for this call.

    Raises:
        BrowserNotFoundError: no Chromium on this machine.
        RenderError: a figure is not plotly JSON, or the browser failed or timed out.
    """
    if not figures:
        return {}
    for name, figure in figures.items():
        if not isinstance(figure, Mapping) or not isinstance(figure.get("data", []), list):
            raise RenderError(
                f"Figure {name!r} is not plotly JSON (a dict with 'data' and 'layout'); got {type(figure).__name__}. "
                "Record figures with report_lib.record.record_figure(name, fig)."
            )
    started = time.perf_counter()
    if session is not None:
        images = session.pngs(figures, width=width, height=height, scale=scale)
    else:
        with PngSession() as own:
            images = own.pngs(figures, width=width, height=height, scale=scale)
    log.info("drew %d chart image(s) in %.1f s", len(images), time.perf_counter() - started)
    return images
