"""Plotly figures (their recorded JSON) -> PNG bytes with kaleido, for email bodies that cannot run JavaScript.

A browser start costs ~3 s and each image ~0.3 s, so ``figure_pngs`` draws every chart of one email in one
browser session. MathJax is disabled (kaleido would fetch it from a CDN) and the browser is the one ``find_browser``
finds, the same Chromium that prints the PDFs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from report_lib.errors import BrowserNotFoundError, RenderError
from report_lib.record import FIGURE_PREFIX
from report_lib.render.pdf import find_browser

log = logging.getLogger(__name__)

EMAIL_CHART_WIDTH = 640  # CSS pixels in the email body
EMAIL_CHART_HEIGHT = 320
EMAIL_CHART_SCALE = 2.0  # sharp on high-density screens
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def record_figures(records: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The figures a notebook recorded with ``record_figure``, by name without the ``figure:`` prefix."""
    return {
        name.removeprefix(FIGURE_PREFIX): value
        for name, value in records.items()
        if name.startswith(FIGURE_PREFIX) and isinstance(value, Mapping)
    }


def figure_png(
    fig_json: Mapping[str, Any],
    width: int = EMAIL_CHART_WIDTH,
    height: int = EMAIL_CHART_HEIGHT,
    *,
    scale: float = EMAIL_CHART_SCALE,
) -> bytes:
    """One figure as PNG bytes (starts a browser: for several figures use ``figure_pngs``)."""
    return figure_pngs({"figure": fig_json}, width=width, height=height, scale=scale)["figure"]


def figure_pngs(
    figures: Mapping[str, Mapping[str, Any]],
    *,
    width: int = EMAIL_CHART_WIDTH,
    height: int = EMAIL_CHART_HEIGHT,
    scale: float = EMAIL_CHART_SCALE,
    timeout: float = 60.0,
) -> dict[str, bytes]:
    """Every figure as PNG bytes, by the same names, drawn in one browser session.

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
    browser = find_browser()
    if browser is None:
        raise BrowserNotFoundError(
            "No Chromium found, so chart images cannot be drawn. Install Debian's chromium package (make setup "
            "does) or set REPORT_CHROMIUM to a Chromium executable."
        )
    opts = {"format": "png", "width": width, "height": height, "scale": scale}
    started = time.perf_counter()
    try:
        images = asyncio.run(_draw_all(dict(figures), opts, browser, timeout))
    except RenderError:
        raise
    except Exception as exc:  # kaleido/choreographer raise their own error types and asyncio errors
        raise RenderError(
            f"Could not draw {len(figures)} chart image(s) with kaleido ({browser}): {type(exc).__name__}: {exc}. "
            "Check that Chromium starts headless on this machine (runner.py health)."
        ) from exc
    log.info("drew %d chart image(s) in %.1f s", len(images), time.perf_counter() - started)
    return images


async def _draw_all(
    figures: dict[str, Mapping[str, Any]], opts: dict[str, Any], browser: str, timeout: float
) -> dict[str, bytes]:
    import kaleido  # heavy: loads only when images are drawn

    images: dict[str, bytes] = {}
    async with kaleido.Kaleido(n=1, timeout=timeout, mathjax=False, path=browser, enable_extensions=False) as k:
        for name, figure in figures.items():
            png = await k.calc_fig(dict(figure), opts=opts)
            if not isinstance(png, bytes) or not png.startswith(PNG_SIGNATURE):
                raise RenderError(f"kaleido returned no PNG for figure {name!r}; expected PNG bytes.")
            images[name] = png
    return images
