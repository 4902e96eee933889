"""Charts: one plotly theme and one function per chart type; each returns a Figure (never shows or writes it).

The theme (``report_template``) is passed as ``template=`` to every figure, so nothing global changes on import.
``apply_theme()`` additionally registers it under ``TEMPLATE_NAME``, makes it the default and hides the plotly logo
in the notebook renderers; call it once in a notebook or dashboard if ad-hoc figures should match.

Print and small screens: white background, 14 px text, horizontal legends above the plot, light grid. Colours are
the Okabe-Ito palette (safe for the common colour-vision deficiencies); up/down are also told apart by marker shape.
Empty inputs give a figure that says "No data" rather than an error.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from report_lib.errors import require_columns
from report_lib.insights import CURRENCY_SYMBOLS
from report_lib.trends import moving_average

TEMPLATE_NAME = "store_reports"
# Okabe-Ito, yellow last (weak on white paper)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
UP_COLOR, DOWN_COLOR, NEUTRAL_COLOR = "#0072B2", "#D55E00", "#7F7F7F"
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"
PLOTLY_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}
BAND_OPACITY = {"95": 0.15, "80": 0.3}
NOTEBOOK_RENDERERS = ("notebook", "notebook_connected", "jupyterlab", "vscode", "iframe", "iframe_connected")


@functools.cache
def report_template() -> go.layout.Template:
    """The project's plotly template (figures copy it on assignment, so the cached object stays unchanged)."""
    axis = {"automargin": True, "linecolor": "#444444", "ticks": "outside", "title": {"standoff": 8}}
    layout = go.Layout(
        font={"family": FONT, "size": 14, "color": "#222222"},
        title={"font": {"size": 18}, "x": 0, "xanchor": "left"},
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=list(PALETTE),
        xaxis={**axis, "showgrid": False},
        yaxis={**axis, "gridcolor": "#E5E5E5", "zerolinecolor": "#999999"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "title": {"text": ""}},
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
        hoverlabel={"font": {"size": 13}},
        hovermode="x unified",
    )
    return go.layout.Template(layout=layout)


def apply_theme(*, default: bool = True) -> str:
    """Register the template as ``TEMPLATE_NAME`` (and make it the default); hide the plotly logo when rendering."""
    pio.templates[TEMPLATE_NAME] = report_template()
    if default:
        pio.templates.default = TEMPLATE_NAME
    for name in NOTEBOOK_RENDERERS:
        renderer = pio.renderers[name]
        renderer.config = {**(getattr(renderer, "config", None) or {}), **PLOTLY_CONFIG}
    return TEMPLATE_NAME


def _figure(title: str, *, y_title: str = "", x_title: str = "", currency: str | None = None) -> go.Figure:
    fig = go.Figure(layout={"template": report_template(), "title": {"text": title}})
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title, tickprefix=_symbol(currency), separatethousands=True)
    return fig


def _symbol(currency: str | None) -> str:
    if currency is None:
        return ""
    return CURRENCY_SYMBOLS.get(currency.upper(), f"{currency.upper()} ")


def _no_data(fig: go.Figure, message: str = "No data for this period") -> go.Figure:
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"size": 16})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def plot_trend(
    data: pd.Series | pd.DataFrame,
    *,
    title: str = "",
    y_title: str = "",
    window: int | None = None,
    currency: str | None = None,
) -> go.Figure:
    """One line per series (a Series, or each column of a wide frame indexed by day); with ``window``, a dashed
    trailing moving average of each in the same colour."""
    frame = data.to_frame() if isinstance(data, pd.Series) else data
    fig = _figure(title, y_title=y_title, currency=currency)
    if frame.empty:
        return _no_data(fig)
    for i, column in enumerate(frame.columns):
        color = PALETTE[i % len(PALETTE)]
        values = frame[column]
        fig.add_scatter(x=frame.index, y=values, name=str(column), mode="lines", line={"color": color, "width": 2})
        if window is not None:
            averaged = moving_average(values, window)
            fig.add_scatter(
                x=frame.index,
                y=averaged,
                name=f"{column}, {window}-point average",
                mode="lines",
                line={"color": color, "width": 2, "dash": "dash"},
            )
    return fig


def plot_forecast(
    history: pd.Series,
    forecast: pd.DataFrame,
    *,
    title: str = "",
    y_title: str = "",
    day_col: str = "day",
    currency: str | None = None,
) -> go.Figure:
    """History as a line, the forecast mean dashed, with shaded 95 % and 80 % intervals (lo95/hi95, lo80/hi80).

    ``forecast`` has mean, lo80, hi80, lo95, hi95 and either a ``day_col`` column or a DatetimeIndex.
    """
    require_columns(forecast.columns, ["mean", "lo80", "hi80", "lo95", "hi95"], what="The forecast frame")
    days = forecast[day_col] if day_col in forecast.columns else forecast.index
    fig = _figure(title, y_title=y_title, currency=currency)
    for level in ("95", "80"):
        fig.add_scatter(x=days, y=forecast[f"hi{level}"], mode="lines", line={"width": 0}, showlegend=False)
        fig.add_scatter(
            x=days,
            y=forecast[f"lo{level}"],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor=_rgba(PALETTE[0], BAND_OPACITY[level]),
            name=f"{level}% interval",
        )
    fig.add_scatter(x=history.index, y=history, name="actual", mode="lines", line={"color": "#222222", "width": 2})
    fig.add_scatter(
        x=days, y=forecast["mean"], name="forecast", mode="lines", line={"color": PALETTE[0], "dash": "dash"}
    )
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def plot_bars(
    frame: pd.DataFrame,
    *,
    category: str,
    value: str,
    horizontal: bool = True,
    title: str = "",
    value_title: str = "",
    currency: str | None = None,
    sort: bool = True,
) -> go.Figure:
    """Bars of ``value`` per ``category``: horizontal by default (long category names stay readable), largest at
    the top when ``sort``; negative bars in the 'down' colour."""
    require_columns(frame.columns, [category, value], what="The bar chart's frame")
    data = frame.sort_values(value, ascending=horizontal, kind="stable") if sort else frame
    fig = _figure(title)
    if data.empty:
        return _no_data(fig)
    colors = [DOWN_COLOR if v < 0 else UP_COLOR for v in data[value].fillna(0)]
    labels, values = data[category].astype(str), data[value]
    bar = go.Bar(
        x=values if horizontal else labels,
        y=labels if horizontal else values,
        orientation="h" if horizontal else "v",
        marker={"color": colors},
        name=value,
        showlegend=False,
    )
    fig.add_trace(bar)
    value_axis = {"title_text": value_title, "tickprefix": _symbol(currency), "separatethousands": True}
    (fig.update_xaxes if horizontal else fig.update_yaxes)(**value_axis)
    fig.update_layout(hovermode="closest")
    return fig


def plot_weekday_profile(
    profile: pd.DataFrame, *, value_col: str = "mean", title: str = "", currency: str | None = None
) -> go.Figure:
    """Vertical bars Monday to Sunday from ``report_lib.trends.weekday_profile``."""
    require_columns(profile.columns, [value_col], what="The weekday profile")
    fig = _figure(title, y_title="average per day", currency=currency)
    if profile[value_col].isna().all():
        return _no_data(fig)
    fig.add_bar(x=[str(day) for day in profile.index], y=profile[value_col], marker_color=PALETTE[0], name=value_col)
    fig.update_layout(showlegend=False, hovermode="closest")
    return fig


def plot_anomalies(
    series: pd.Series,
    flags: pd.DataFrame,
    *,
    day_col: str = "day",
    direction_col: str = "direction",
    title: str = "",
    y_title: str = "",
    currency: str | None = None,
) -> go.Figure:
    """The series as a line, flagged days as markers: ▲ 'up' and ▼ 'down' (shape and colour)."""
    require_columns(flags.columns, [day_col, direction_col], what="The anomaly flags")
    fig = plot_trend(series, title=title, y_title=y_title, currency=currency)
    if series.empty:
        return fig
    fig.data[0].line.color = NEUTRAL_COLOR
    for direction, symbol, color in (("up", "triangle-up", UP_COLOR), ("down", "triangle-down", DOWN_COLOR)):
        days = pd.DatetimeIndex(pd.to_datetime(flags.loc[flags[direction_col] == direction, day_col]))
        shown = days[days.isin(series.index)]
        fig.add_scatter(
            x=shown,
            y=series.reindex(shown),
            mode="markers",
            name=f"unusually {'high' if direction == 'up' else 'low'}",
            marker={"symbol": symbol, "size": 12, "color": color, "line": {"width": 1, "color": "white"}},
        )
    return fig


def plot_scatter(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str | None = None,
    text: str | None = None,
    title: str = "",
    x_title: str = "",
    y_title: str = "",
) -> go.Figure:
    """Points of ``y`` against ``x``; one trace (legend entry) per value of ``color`` (e.g. a segment)."""
    require_columns(frame.columns, [x, y, *(c for c in (color, text) if c)], what="The scatter frame")
    fig = _figure(title, x_title=x_title or x, y_title=y_title or y)
    if frame.empty:
        return _no_data(fig)
    groups: Sequence[tuple[Any, pd.DataFrame]] = list(frame.groupby(color, sort=True)) if color else [(y, frame)]
    for i, (name, part) in enumerate(groups):
        fig.add_scatter(
            x=part[x],
            y=part[y],
            mode="markers",
            name=str(name),
            text=part[text] if text else None,
            marker={"color": PALETTE[i % len(PALETTE)], "size": 9, "opacity": 0.8},
        )
    fig.update_layout(hovermode="closest", showlegend=color is not None)
    return fig


def plot_kpi_change(kpis: pd.DataFrame, *, column: str = "change_pct", title: str = "") -> go.Figure:
    """Horizontal bars of each KPI's % change (``column`` of the KPI table); KPIs without a comparison are left out."""
    require_columns(kpis.columns, ["label", column], what="The KPI table")
    known = kpis[kpis[column].notna()]
    if known.empty:
        return _no_data(_figure(title), "No comparison available")
    fig = plot_bars(known, category="label", value=column, title=title, value_title="change, %", sort=False)
    fig.update_yaxes(autorange="reversed")  # table order, first KPI on top
    return fig
