"""The plotly renderer report notebooks use: charts that survive nbconvert and render offline.

plotly 7 inside a kernel defaults to a mimetype nbconvert drops, and its stock ``notebook`` renderer adds a MathJax
``<script src>`` from a CDN to every chart. The ``report`` renderer registered here inlines plotly.js once per
kernel session (so the executed .ipynb is self-contained too) and emits chart ``<div>``s with no network fetches.
This module imports neither nbconvert nor a browser, so kernels stay light.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import plotly.io as pio
from plotly.io._base_renderers import NotebookRenderer

log = logging.getLogger(__name__)

RENDERER_NAME = "report"
DEFAULT_CHART_HEIGHT = 420
PLOTLY_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}


class OfflineReportRenderer(NotebookRenderer):  # type: ignore[misc]  # plotly ships no type hints
    """plotly's notebook renderer without the CDN MathJax script and without the classic-notebook observers."""

    def __init__(self, *, height: int = DEFAULT_CHART_HEIGHT) -> None:
        super().__init__(config=PLOTLY_CONFIG, include_plotlyjs=False)
        self.height = height

    def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, str]:
        html = pio.to_html(
            fig_dict,
            config=self.config,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            default_width="100%",
            default_height=self.height,
            validate=False,
        )
        return {"text/html": html}


def setup_notebook_plotting(*, height: int = DEFAULT_CHART_HEIGHT) -> str:
    """Make the offline ``report`` renderer plotly's default in this kernel; returns its name.

    Call it once in a notebook's first cell. The first chart shown afterwards also outputs plotly.js (~4.8 MB) once;
    every chart after that is a small ``<div>`` and script. The HTML exporter moves plotly.js into the page head, so
    hiding the cell that happened to carry it does not break the charts.
    """
    skip_slow_optional_imports()
    pio.renderers[RENDERER_NAME] = OfflineReportRenderer(height=height)
    pio.renderers.default = RENDERER_NAME
    log.debug("plotly renderer set to %r", RENDERER_NAME)
    return RENDERER_NAME


def skip_slow_optional_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax`` in report and dashboard kernels.

    plotly's FigureWidget imports nbformat, whose jsonschema imports rfc3987_syntax if installed, only to check
    'iri' strings; building its grammar took 1-4 s of every page load here. Kernels never validate IRIs, and
    jsonschema skips that check when the import fails (a None entry in sys.modules makes it fail).
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
