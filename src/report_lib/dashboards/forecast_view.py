"""The forecast explorer: the coming days of a store's revenue or orders with their intervals, and the backtest.

The forecast is ``report_lib.forecast.forecast_series`` on the store's daily (or weekly) series, as in the emailed
forecast report; each (store, metric, horizon) is fitted once per session and kept: moving the slider back, or
switching the interval bands, never refits. Bands are hidden by making their traces invisible, not by refitting.
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from report_lib.charts import plot_forecast
from report_lib.dashboards import figures, pickers, ui
from report_lib.dashboards.session import DashboardSession
from report_lib.forecast import ForecastResult, forecast_series
from report_lib.insights import format_money
from report_lib.trends import Freq, resample_metric

HISTORY_SHOWN = 182  # days (26 weeks) of history before the forecast
HORIZON_STEP, HORIZON_MAX = 7, 56
BANDS = (("80% and 95%", "both"), ("80% only", "80"), ("None", "none"))
FORECAST_METRICS = ("revenue", "orders")


def forecast_result(session: DashboardSession, store: str, metric: str, horizon_days: int) -> ForecastResult:
    """The fitted forecast of a store's metric ``horizon_days`` ahead (weeks ahead, rounded up, for weekly data)."""

    def compute() -> ForecastResult:
        horizon = math.ceil(horizon_days / 7) if weekly_only(session, store) else horizon_days
        return forecast_series(history(session, store, metric), horizon=horizon, min_folds=1)

    return session.cached(("forecast", store, metric, horizon_days), compute)


def history(session: DashboardSession, store: str, metric: str) -> pd.Series:
    """The store's metric by day (by week for weekly-only data), all of its history; cached."""

    def compute() -> pd.Series:
        freq: Freq = "W" if weekly_only(session, store) else "D"
        return resample_metric(session.daily((store,)), freq=freq, metric=metric)

    return session.cached(("history", store, metric), compute)


def weekly_only(session: DashboardSession, store: str) -> bool:
    """True for a store with weekly totals only (an imported weekly file): forecasts are then by week."""
    return bool((session.daily((store,))["grain"] == "week").any())


def forecast_figure(series: pd.Series, result: ForecastResult, *, metric: str, bands: str, currency: str) -> go.Figure:
    """History (the last 26 weeks) and forecast with the chosen interval bands."""
    label = pickers.METRIC_LABELS[metric]
    fig = plot_forecast(
        series.tail(HISTORY_SHOWN if result.freq == "D" else HISTORY_SHOWN // 7),
        result.forecast,
        day_col="date",
        title=f"{label}: {result.horizon} {'days' if result.freq == 'D' else 'weeks'} ahead",
        y_title=label,
        currency=(currency or None) if metric in pickers.MONEY_METRICS else None,
    )
    hidden = {"both": (), "80": ("95",), "none": ("95", "80")}[bands]
    for level in hidden:
        hide_band(fig, level)
    return fig


def hide_band(fig: go.Figure, level: str) -> None:
    """Hide the ``level``% band: plot_forecast draws each band as its upper edge, then the named lower edge."""
    traces = list(fig.data)
    for index, trace in enumerate(traces):
        if trace.name == f"{level}% interval":
            trace.visible = False
            if index > 0:
                traces[index - 1].visible = False


def score_html(result: ForecastResult) -> str:
    """The backtest in one sentence, the forecast's own note, and the folds."""
    verdict = "the model is used" if not result.fallback else "seasonal naive is used"
    sentence = (
        f"Backtest ({len(result.backtest)} folds of {result.horizon} {'days' if result.freq == 'D' else 'weeks'}): "
        f"{html.escape(result.model)} scored a MASE of {_number(result.mase_model)} against "
        f"{_number(result.mase_naive)} for seasonal naive (lower is better); {verdict}."
    )
    backtest = result.backtest.assign(cutoff=pd.to_datetime(result.backtest["cutoff"]).dt.strftime("%d %b %Y"))
    folds = ui.table_html(
        backtest,
        decimals={"mase_model": 2, "mase_naive": 2},
        shares=["coverage80", "coverage95"],
        rename={
            "fold": "Fold",
            "cutoff": "First day tested",
            "mase_model": "MASE model",
            "mase_naive": "MASE seasonal naive",
            "coverage80": "In 80% band",
            "coverage95": "In 95% band",
        },
    )
    return f'<p class="sd-score">{sentence}</p>{ui.note_html(result.note)}{folds}'


def _number(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


def total_html(result: ForecastResult, *, metric: str, currency: str) -> str:
    """The sum of the point forecasts over the horizon, in the metric's unit."""
    total = float(result.forecast["mean"].sum())
    shown = format_money(total, currency or "USD") if metric in pickers.MONEY_METRICS else f"{total:,.0f}"
    unit = "days" if result.freq == "D" else "weeks"
    return (
        f'<p class="sd-score">Expected over the next {result.horizon} {unit}: <strong>{html.escape(shown)}</strong> '
        "(the sum of the point forecasts)</p>"
    )


class ForecastDashboard:
    """Store, metric, horizon slider and bands; the chart and the backtest update in place."""

    def __init__(self, session: DashboardSession) -> None:
        self.session = session
        self.store = pickers.selection_picker(session, regions=False)
        self.metric = pickers.metric_picker(session, FORECAST_METRICS)
        default = session.thresholds(self._store()).forecast_horizon
        self.horizon = widgets.IntSlider(
            value=min(HORIZON_MAX, max(HORIZON_STEP, round(default / HORIZON_STEP) * HORIZON_STEP)),
            min=HORIZON_STEP,
            max=HORIZON_MAX,
            step=HORIZON_STEP,
            description="Days ahead",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self.bands = ui.dropdown("Intervals", BANDS, "both", width="220px")
        self.status = ui.StatusLine()
        self.chart = figures.ChartSlot("sd-forecast", height=420)
        self.total = ui.html_widget()
        self.score = ui.html_widget()
        with self.status.working("Fitting the forecast…"):
            self.update()
        fit = ui.safely(self.status, "Fitting the forecast (a few seconds the first time)…", self.update)
        for control in (self.store, self.metric, self.horizon, self.bands):
            control.observe(fit, "value")
        self.widget = widgets.VBox(
            [
                ui.controls(self.store, self.metric, self.horizon, self.bands),
                self.status.widget,
                self.chart.widget,
                self.total,
                ui.heading("How well the method forecast the past"),
                self.score,
            ]
        )

    def _store(self) -> str:
        return str(self.store.value).removeprefix("store:")

    def update(self) -> None:
        selection = self.session.warehouse.select(str(self.store.value))
        metric, store = str(self.metric.value), selection.store
        result = forecast_result(self.session, store, metric, int(self.horizon.value))
        series = history(self.session, store, metric)
        fig = forecast_figure(series, result, metric=metric, bands=str(self.bands.value), currency=selection.currency)
        self.chart.show(fig)
        self.total.value = total_html(result, metric=metric, currency=selection.currency)
        self.score.value = score_html(result)
