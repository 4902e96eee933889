"""The anomalies view: a store's flagged days in a chart and a table, with the threshold on a slider.

Flags are ``report_lib.anomalies.detect_anomalies`` (robust method, as the emailed anomalies report) on the store's
whole history, then shown for the chosen window; the slider's default is the store's ``anomaly_z`` threshold
(defaults.yaml, stores.yaml). Each (store, metric, threshold) is computed once per session.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from report_lib.anomalies import detect_anomalies
from report_lib.charts import plot_anomalies
from report_lib.dashboards import figures, pickers, ui
from report_lib.dashboards.session import DashboardSession
from report_lib.trends import resample_metric

ANOMALY_METRICS = ("revenue", "orders", "units", "customers")
WINDOWS = (("Last 13 weeks", 91), ("Last 26 weeks", 182), ("Last 52 weeks", 364))
TABLE_COLUMNS = {
    "day": "Day",
    "value": "Value",
    "expected": "Expected",
    "score": "Score",
    "direction": "Direction",
    "severity": "Severity",
}


def flags_for(session: DashboardSession, store: str, metric: str, threshold: float) -> pd.DataFrame:
    """Every flagged day of the store's history at ``threshold``; cached."""
    return session.cached(
        ("anomalies", store, metric, threshold),
        lambda: detect_anomalies(session.daily((store,)), method="robust", metric=metric, threshold=threshold),
    )


def window_start(last_day: dt.date, days: int) -> pd.Timestamp:
    return pd.Timestamp(last_day - dt.timedelta(days=days - 1))


def anomalies_figure(series: pd.Series, flags: pd.DataFrame, *, metric: str, currency: str) -> go.Figure:
    label = pickers.METRIC_LABELS[metric]
    money = metric in pickers.MONEY_METRICS
    return plot_anomalies(
        series,
        flags,
        title=f"{label} and flagged days",
        y_title=label,
        currency=(currency or None) if money else None,
    )


def flags_table_html(flags: pd.DataFrame, *, metric: str, currency: str) -> str:
    """The window's flags, newest first, formatted as in the reports."""
    shown = flags.sort_values("day", ascending=False)[list(TABLE_COLUMNS)]
    shown = shown.assign(day=pd.to_datetime(shown["day"]).dt.strftime("%a %d %b %Y"))
    money = ["value", "expected"] if metric in pickers.MONEY_METRICS else []
    decimals = {"score": 1} | ({} if money else {"value": 0, "expected": 0})
    if shown.empty:
        return ui.note_html("No day in this window is beyond the threshold.")
    return ui.table_html(shown, currency=currency or "USD", money=money, decimals=decimals, rename=TABLE_COLUMNS)


class AnomaliesDashboard:
    """Store, metric, window and threshold; the chart and the table update in place."""

    def __init__(self, session: DashboardSession) -> None:
        self.session = session
        self.store = pickers.selection_picker(session, regions=False)
        self.metric = pickers.metric_picker(session, ANOMALY_METRICS)
        self.window = ui.dropdown("Show", WINDOWS, 182, width="200px")
        default = session.thresholds(str(self.store.value).removeprefix("store:")).anomaly_z
        self.threshold = widgets.FloatSlider(
            value=default,
            min=2.0,
            max=6.0,
            step=0.5,
            description="Threshold (robust z)",
            continuous_update=False,
            readout_format=".1f",
            style={"description_width": "initial"},
        )
        self.status = ui.StatusLine()
        self.chart = figures.ChartSlot("sd-anomalies")
        self.summary = ui.html_widget()
        self.table = ui.html_widget()
        with self.status.working("Looking for unusual days…"):
            self.update()
        refresh = ui.safely(self.status, "Looking for unusual days…", self.update)
        for control in (self.store, self.metric, self.window, self.threshold):
            control.observe(refresh, "value")
        self.widget = widgets.VBox(
            [
                ui.controls(self.store, self.metric, self.window, self.threshold),
                self.status.widget,
                self.chart.widget,
                ui.heading("Flagged days"),
                self.summary,
                self.table,
            ]
        )

    def update(self) -> None:
        selection = self.session.warehouse.select(str(self.store.value))
        metric, threshold = str(self.metric.value), float(self.threshold.value)
        daily = self.session.daily(selection.codes)
        weekly = bool((daily["grain"] == "week").any())
        series = resample_metric(daily, freq="W" if weekly else "D", metric=metric)
        start = window_start(self.session.last_day, int(self.window.value))
        series = series[series.index >= start]
        flags = flags_for(self.session, selection.store, metric, threshold)
        shown = flags[pd.to_datetime(flags["day"]) >= start]
        self.chart.show(anomalies_figure(series, shown, metric=metric, currency=selection.currency))
        ups, downs = int((shown["direction"] == "up").sum()), int((shown["direction"] == "down").sum())
        self.summary.value = ui.note_html(
            f"{len(shown)} flagged day(s) in this window at a threshold of {threshold:.1f}: "
            f"{ups} unusually high, {downs} unusually low."
        )
        self.table.value = flags_table_html(shown, metric=metric, currency=selection.currency)
