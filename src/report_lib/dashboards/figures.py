"""Charts that update in place: plotly ``FigureWidget`` with its front-end loaded once per page, not once per chart.

plotly 7's ``FigureWidget`` is an anywidget whose ``_esm`` is the whole 5 MB front-end bundle, sent through the
kernel websocket and evaluated again for every chart (measured here: ~4 s per chart on a loaded 2-core machine).
``DashboardFigure`` replaces it with a few lines that import the same bundle by URL from the dashboards server
(``/voila/dashboard-assets/widgetbundle.js``, see ``report_lib.dashboards.app``): the browser fetches it once,
caches it, and every chart on the page shares the one module.

``replace_figure`` swaps a chart's traces and layout for a new figure's in one batch (plotly's own
``update(overwrite=True)``), so the chart widget stays where it is and only the changes travel.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly
import plotly.graph_objects as go

from report_lib.charts import PLOTLY_CONFIG

ASSET_PATH = "dashboard-assets/widgetbundle.js"
DEFAULT_HEIGHT = 380
_LOADER = f"""
const base = (document.body && document.body.dataset.baseUrl) || "/voila/";
const bundle = await import(new URL(base + "{ASSET_PATH}?v={plotly.__version__}", window.location.href).href);
export default bundle.default;
"""


class DashboardFigure(go.FigureWidget):  # type: ignore[misc]  # plotly ships no type hints
    """A plotly FigureWidget whose front-end comes from the server's cached asset instead of the websocket."""

    _esm = _LOADER


def figure_widget(figure: go.Figure, *, height: int = DEFAULT_HEIGHT) -> DashboardFigure:
    """A chart widget showing ``figure`` (the project's theme comes with the figure from ``report_lib.charts``)."""
    sized = go.Figure(figure).update_layout(height=height, autosize=True)  # before the widget: see ChartSlot
    widget = DashboardFigure(sized)
    widget._config = {**PLOTLY_CONFIG, "displayModeBar": False}
    return widget


def replace_figure(widget: go.FigureWidget, figure: go.Figure, *, height: int | None = None) -> None:
    """Show ``figure`` in ``widget``, which stays where it is.

    When the traces are of the same number and types (a new store, period or threshold for the same chart), every
    property is restyled in place in one batch: one ``Plotly.update`` in the browser. Otherwise all traces and the
    layout are replaced (plotly's ``update(overwrite=True)``). ``figure`` itself is never modified (it may be cached):
    the widget gets fresh copies of its properties.
    """
    spec = figure.to_plotly_json()
    layout: dict[str, Any] = spec["layout"]
    layout["height"] = height or widget.layout.height or DEFAULT_HEIGHT
    layout["autosize"] = True
    current = [trace.type for trace in widget.data]
    if current and current == [trace.get("type", "scatter") for trace in spec["data"]]:
        _restyle_in_place(widget, spec["data"], layout)
    else:
        widget.update(data=spec["data"], layout=layout, overwrite=True)


def _restyle_in_place(widget: go.FigureWidget, data: list[dict[str, Any]], layout: dict[str, Any]) -> None:
    """Every trace property and layout key set to the new figure's (absent ones unset), sent as one update."""
    with widget.batch_update():
        for trace, new in zip(widget.data, data, strict=True):
            stale = set(trace.to_plotly_json()) - set(new) - {"type", "uid"}
            trace.update({**dict.fromkeys(stale), **{k: v for k, v in new.items() if k != "type"}}, overwrite=True)
        shown = widget.layout.to_plotly_json()
        stale = set(shown) - set(layout) - {"template"}
        changed = {key: value for key, value in layout.items() if key != "template" and shown.get(key) != value}
        widget.layout.update({**dict.fromkeys(stale), **changed}, overwrite=True)


class ChartSlot:
    """Where a dashboard shows one chart: the first figure creates the chart widget, later ones replace it in place.

    A FigureWidget only sends its full state when it is created; changes made before the page's view of it exists
    travel as messages nobody receives (DESIGN.md's "FigureWidget missed updates"). So the widget is created from
    the first real figure, and the slot shows an empty box until then.
    """

    def __init__(self, *css_classes: str, height: int = DEFAULT_HEIGHT) -> None:
        self.height = height
        self.widget = widgets.Box(layout=widgets.Layout(width="100%"))
        for name in ("sd-chart", *css_classes):
            self.widget.add_class(name)
        self.chart: DashboardFigure | None = None

    def show(self, figure: go.Figure) -> None:
        if self.chart is None:
            self.chart = figure_widget(figure, height=self.height)
            self.widget.children = (self.chart,)
        else:
            replace_figure(self.chart, figure, height=self.height)
