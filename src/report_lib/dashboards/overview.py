"""The overview dashboard: KPI tiles of a store, region or all of the user's stores, and the trend behind them.

Numbers are those of the emailed store overview: ``ScopedWarehouse.kpis`` (exact customer counts for one store,
daily sums for several) and ``report_lib.render.brand.kpi_tiles`` for the tiles; the chart is
``report_lib.charts.plot_trend`` of the chosen metric by day with a 7-day average, the period shaded.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from report_lib.charts import plot_trend
from report_lib.dashboards import figures, pickers, ui
from report_lib.dashboards.access import Selection
from report_lib.dashboards.session import DashboardSession
from report_lib.insights import write_insights
from report_lib.periods import Period
from report_lib.render.brand import comparison_label
from report_lib.trends import resample_metric

TREND_DAYS = 91  # at least 13 weeks of days behind the period's end
TREND_WINDOW = 7


@dataclass(frozen=True)
class OverviewData:
    selection: Selection
    period: Period
    kpis: pd.DataFrame
    insights: tuple[str, ...]


def overview_data(session: DashboardSession, selection_key: str, period_text: str) -> OverviewData:
    """The KPI table (and, for one store, the insight sentences) of a selection and period; cached."""

    def compute() -> OverviewData:
        selection = session.warehouse.select(selection_key)
        period = session.period(period_text)
        kpis = session.warehouse.kpis(selection, period)
        sentences: tuple[str, ...] = ()
        if selection.is_store:
            changes = session.warehouse.category_comparison(selection.store, period)
            name = str(session.warehouse.stores().set_index("code").loc[selection.store, "name"])
            sentences = tuple(
                write_insights(
                    kpis,
                    category_changes=changes if not changes.empty else None,
                    period=period,
                    store_name=name,
                    currency=selection.currency,
                )
            )
        return OverviewData(selection, period, kpis, sentences)

    return session.cached(("overview", selection_key, period_text), compute)


def trend_series(daily: pd.DataFrame, metric: str, period: Period) -> pd.Series:
    """The metric by day (by week for weekly-only data) from ``TREND_DAYS`` (or three periods) before its end."""
    weekly = bool((daily["grain"] == "week").any())
    series = resample_metric(daily, freq="W" if weekly else "D", metric=metric)
    start = pd.Timestamp(period.end - dt.timedelta(days=max(TREND_DAYS, 3 * period.days) - 1))
    return series[(series.index >= start) & (series.index <= pd.Timestamp(period.end))]


def trend_figure(series: pd.Series, *, metric: str, period: Period, currency: str, weekly: bool = False) -> go.Figure:
    """The trend chart: the metric, its 7-point average, and the period shaded."""
    label = pickers.METRIC_LABELS[metric]
    money = metric in pickers.MONEY_METRICS
    fig = plot_trend(
        series.rename(label),
        title=f"{label} by {'week' if weekly else 'day'}",
        y_title=label,
        window=TREND_WINDOW,
        currency=(currency or None) if money else None,
    )
    fig.add_vrect(
        x0=pd.Timestamp(period.start) - pd.Timedelta(hours=12),
        x1=pd.Timestamp(period.end) + pd.Timedelta(hours=12),
        fillcolor="#1d4e89",
        opacity=0.08,
        line_width=0,
    )
    return fig


def headline(data: OverviewData, comparison: str) -> str:
    """'S01 · Ashford' over '2024-W10 · 04 Mar – 10 Mar 2024 · against the previous period'."""
    return (
        f'<div class="sd-heading">{html.escape(data.selection.label)}</div>'
        f'<p class="sd-note">{html.escape(pickers.describe_period(data.period))} · '
        f"against {comparison_label(comparison)}</p>"
    )


class OverviewDashboard:
    """Pickers, KPI tiles, insight sentences and the trend chart; every change updates them in place."""

    def __init__(self, session: DashboardSession) -> None:
        self.session = session
        self.selection = pickers.selection_picker(session)
        self.period = pickers.period_picker(session)
        self.comparison = pickers.comparison_picker(session)
        self.metric = pickers.metric_picker(session)
        self.status = ui.StatusLine()
        self.title = ui.html_widget()
        self.tiles = ui.html_widget("", "sd-tiles")
        self.insights = ui.html_widget("", "sd-insights")
        self.figure = figures.ChartSlot("sd-trend")
        with self.status.working("Loading the figures…"):
            self.update()
        if session.link.notes and self.status.problem is None:
            self.status.show(" ".join(session.link.notes), "denied")
        refresh = ui.safely(self.status, "Updating the figures…", self.update)
        for picker in (self.selection, self.period, self.comparison):
            picker.observe(refresh, "value")
        self.metric.observe(ui.safely(self.status, "Drawing the chart…", self.update_chart), "value")
        self.widget = widgets.VBox(
            [
                ui.controls(self.selection, self.period, self.comparison),
                self.status.widget,
                self.title,
                self.tiles,
                self.insights,
                ui.controls(self.metric),
                self.figure.widget,
            ]
        )

    def data(self) -> OverviewData:
        return overview_data(self.session, str(self.selection.value), str(self.period.value))

    def update(self) -> None:
        data = self.data()
        comparison = str(self.comparison.value)
        self.title.value = headline(data, comparison)
        self.tiles.value = ui.kpi_tiles_html(data.kpis, currency=data.selection.currency, comparison=comparison)
        self.insights.value = "".join(f"<p>{html.escape(sentence)}</p>" for sentence in data.insights)
        self.insights.layout.display = "" if data.insights else "none"
        self.update_chart()

    def update_chart(self) -> None:
        data = self.data()
        metric = str(self.metric.value)

        def compute() -> go.Figure:
            daily = self.session.daily(data.selection.codes)
            weekly = bool((daily["grain"] == "week").any())
            series = trend_series(daily, metric, data.period)
            return trend_figure(
                series, metric=metric, period=data.period, currency=data.selection.currency, weekly=weekly
            )

        key = ("trend", str(self.selection.value), str(self.period.value), metric)
        self.figure.show(self.session.cached(key, compute))
