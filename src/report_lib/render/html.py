"""Executed notebook -> one offline HTML file with the store_report template (no code, no CDN, our header).

The template lives in ``templates/nbconvert/store_report`` and is found by NAME through ``extra_template_basedirs``
(``--template-file`` silently falls back to the stock template). Its conf.json enables the tag-removal preprocessor
(``remove-cell``, ``remove-input``, ``remove-output``) and ``ReportOutputsPreprocessor`` below, which drops our
record outputs, turns plotly's JSON mimetype into chart ``<div>``s, removes CDN MathJax/plotly scripts and lifts
plotly.js out of the cells: the template inlines it once in the page head.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from traitlets.config import Config

from report_lib.errors import RenderError
from report_lib.files import write_atomic
from report_lib.record import RECORD_MIMETYPE, read_records
from report_lib.render.brand import PRODUCT_NAME, TEMPLATE_DIR, comparison_label, kpi_tiles, text_list

log = logging.getLogger(__name__)

TEMPLATE_NAME = "store_report"
NBCONVERT_TEMPLATES = TEMPLATE_DIR / "nbconvert"
PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"
PLOTLYJS_MARKER = "window.PlotlyConfig = {MathJaxConfig: 'local'};"
CHART_MARKER = "plotly-graph-div"
_REMOTE_SCRIPT = re.compile(
    r"<script[^>]*\bsrc=[\"']https?://[^\"']*[\"'][^>]*>\s*</script>"  # plotly's CDN MathJax tag
    r"|<script type=\"module\">\s*import\s+[\"']https?://[^\"']*[\"'];?\s*</script>",  # notebook_connected
    re.IGNORECASE,
)
_EXPORTERS = threading.local()  # one exporter per thread: nbconvert's exporters are not meant to be shared
HEADER_KEYS = ("store", "store_name", "period_label", "comparison", "currency", "kpis", "insights", "title")


class ReportOutputsPreprocessor(Preprocessor):  # type: ignore[misc]  # nbconvert ships no type hints
    """Clean outputs for a report page; records in ``resources['report']['has_charts']`` whether charts remain."""

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        report = resources.setdefault("report", {})
        for cell in nb.cells:
            if cell.get("cell_type") != "code":
                continue
            outputs = [_clean_output(output) for output in cell.get("outputs", [])]
            cell["outputs"] = [output for output in outputs if output is not None]
            if any(CHART_MARKER in output.get("data", {}).get("text/html", "") for output in cell["outputs"]):
                report["has_charts"] = True
        return nb, resources


def _clean_output(output: Any) -> Any:
    """The output as the report shows it, or None to drop it (records, stderr noise, plotly.js itself)."""
    if output.get("output_type") == "stream":
        return None if output.get("name") == "stderr" else output
    data = output.get("data")
    if data is None:
        return output
    data.pop(RECORD_MIMETYPE, None)
    if PLOTLY_MIMETYPE in data and "text/html" not in data:
        data["text/html"] = _chart_div(data[PLOTLY_MIMETYPE])
    html = data.get("text/html")
    if isinstance(html, list):
        html = "".join(html)
    if isinstance(html, str):
        if PLOTLYJS_MARKER in html and CHART_MARKER not in html:
            return None  # the kernel's copy of plotly.js: the page head carries it
        data["text/html"] = _REMOTE_SCRIPT.sub("", html)
    return output if data else None


def _chart_div(figure: Any) -> str:
    import plotly.io as pio

    from report_lib.render.plotting import DEFAULT_CHART_HEIGHT, PLOTLY_CONFIG

    return str(
        pio.to_html(
            figure,
            config=PLOTLY_CONFIG,
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            default_height=DEFAULT_CHART_HEIGHT,
            validate=False,
        )
    )


@functools.cache
def plotly_js() -> str:
    """plotly.js (4.8 MB), read once per process."""
    import plotly.offline

    return str(plotly.offline.get_plotlyjs())


def report_header(records: Mapping[str, Any], *, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the template's header shows: recorded values, falling back to ``defaults`` (e.g. the run's parameters)."""
    merged = {key: value for key, value in (defaults or {}).items() if key in HEADER_KEYS}
    merged.update({key: records[key] for key in HEADER_KEYS if records.get(key) is not None})
    currency = merged.get("currency")
    comparison = str(merged.get("comparison") or "previous")
    return {
        "product": PRODUCT_NAME,
        "store": str(merged.get("store") or ""),
        "store_name": str(merged.get("store_name") or ""),
        "period_label": str(merged.get("period_label") or ""),
        "comparison": comparison_label(comparison),
        "title": str(merged.get("title") or ""),
        "tiles": kpi_tiles(merged.get("kpis"), currency=str(currency) if currency else None, comparison=comparison),
        "insights": text_list(merged.get("insights")),
        "generated": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "plotly_js": plotly_js,  # called by the template only when a chart remains after preprocessing
    }


def _exporter() -> HTMLExporter:
    """This thread's exporter, built on first use: its Jinja environment keeps the compiled templates (a new
    exporter recompiles them, ~0.5 s a report). ``from_notebook_node`` keeps no state between notebooks."""
    exporter: HTMLExporter | None = getattr(_EXPORTERS, "html", None)
    if exporter is None:
        exporter = _EXPORTERS.html = _new_exporter()
    return exporter


def _new_exporter() -> HTMLExporter:
    config = Config()
    config.HTMLExporter.exclude_input = True
    config.HTMLExporter.exclude_input_prompt = True
    config.HTMLExporter.exclude_output_prompt = True
    config.HTMLExporter.embed_images = True
    return HTMLExporter(  # type: ignore[no-untyped-call]
        config=config, template_name=TEMPLATE_NAME, extra_template_basedirs=[str(NBCONVERT_TEMPLATES)]
    )


def notebook_to_html(
    notebook: nbformat.NotebookNode, *, title: str | None = None, defaults: Mapping[str, Any] | None = None
) -> str:
    """The report page of an executed notebook, as one self-contained HTML string. The notebook is not modified."""
    header = report_header(read_records(notebook), defaults=defaults)
    header["title"] = title or header["title"] or str(notebook.get("metadata", {}).get("title") or "Store report")
    page_name = " · ".join(part for part in (header["store_name"] or header["store"], header["title"]) if part)
    resources: dict[str, Any] = {"metadata": {"name": page_name}, "report": header}
    try:
        body, _ = _exporter().from_notebook_node(notebook, resources=resources)
    except Exception as exc:  # nbconvert raises template, filter and preprocessor errors of many kinds
        raise RenderError(
            f"Could not convert the notebook {page_name!r} to HTML: {type(exc).__name__}: {exc}. Expected an executed "
            f"notebook and the template {TEMPLATE_NAME!r} under {NBCONVERT_TEMPLATES}; check that the templates "
            "folder is present and the notebook opens in Jupyter."
        ) from exc
    return str(body)


def render_html(
    ipynb_path: Path, html_path: Path, *, title: str | None = None, defaults: Mapping[str, Any] | None = None
) -> Path:
    """Read an executed notebook and write its report page atomically to ``html_path``."""
    try:
        notebook = nbformat.read(ipynb_path, as_version=4)  # type: ignore[no-untyped-call]
    except (OSError, ValueError) as exc:  # nbformat's NotJSONError/ValidationError are ValueErrors
        raise RenderError(
            f"Could not read the executed notebook {ipynb_path}: {exc}. Expected a .ipynb written by papermill; "
            "re-run the report to recreate it."
        ) from exc
    html = notebook_to_html(notebook, title=title, defaults=defaults)
    write_atomic(html_path, html)
    log.info("wrote %s (%.1f MB)", html_path, len(html) / 1e6)
    return html_path
