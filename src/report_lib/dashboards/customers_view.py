"""The customers view: RFM segments of a store's (or region's) identified customers and the score distribution.

RFM figures come from ``load_customer_rfm`` (SQL), scored and named by ``report_lib.segments`` exactly as in the
emailed segments report, as of the last day with data, over the chosen history. The distribution chart bins the raw
figures (quintile scores are uniform by construction, so their counts would say nothing). Stores with aggregate
totals only have no customers to show: the view says so (NeedsOrderLinesError's message).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from report_lib.charts import plot_bars
from report_lib.dashboards import figures, pickers, ui
from report_lib.dashboards.session import DashboardSession
from report_lib.insights import CURRENCY_SYMBOLS
from report_lib.segments import name_segments, score_rfm, segment_profile

HISTORIES = (("Last 12 months", 365), ("Last 24 months", 730))
FIGURES = (("Recency", "recency_days"), ("Frequency", "frequency"), ("Spend", "monetary"))
# fixed, readable bins: (upper edges, labels); spend bins follow the data (nice_edges)
RECENCY_BINS = ((7, 30, 90, 180, 365, math.inf), ("≤ 7 days", "8–30", "31–90", "91–180", "181–365", "> 365"))
FREQUENCY_BINS = ((1, 2, 5, 10, 20, math.inf), ("1 order", "2", "3–5", "6–10", "11–20", "> 20"))


def segmented(session: DashboardSession, selection_key: str, days: int) -> pd.DataFrame:
    """One row per identified customer with RFM figures, scores and segment; cached."""

    def compute() -> pd.DataFrame:
        selection = session.warehouse.select(selection_key)
        start = session.last_day - dt.timedelta(days=days - 1)
        rfm = session.warehouse.customer_rfm(selection.codes, as_of=session.last_day, start=start)
        return name_segments(score_rfm(rfm))

    return session.cached(("segments", selection_key, days), compute)


def nice_edges(values: pd.Series, *, bins: int = 6, prefix: str = "") -> tuple[tuple[float, ...], tuple[str, ...]]:
    """Upper bin edges on the 1-2-5 scale up to about the 95th percentile, and labels ('< $20', '$20–50', ...)."""
    top = float(values.quantile(0.95)) if len(values) else 1.0
    scale = [m * 10.0**e for e in range(-1, 8) for m in (1, 2, 5)]
    inner = [edge for edge in scale if edge < top][-(bins - 1) :] or [top]
    edges = (*inner, math.inf)
    labels = [f"< {prefix}{inner[0]:,.0f}"]
    labels += [f"{prefix}{low:,.0f}–{high:,.0f}" for low, high in itertools.pairwise(inner)]
    labels.append(f"≥ {prefix}{inner[-1]:,.0f}")
    return edges, tuple(labels)


def value_distribution(customers: pd.DataFrame, column: str, *, currency: str = "USD") -> pd.DataFrame:
    """Customers per bin of recency (days), frequency (orders) or spend: bin label and count, in bin order."""
    values = customers[column].astype(float)
    edges: tuple[float, ...]
    labels: tuple[str, ...]
    if column == "recency_days":
        edges, labels = RECENCY_BINS
    elif column == "frequency":
        edges, labels = FREQUENCY_BINS
    else:
        symbol = CURRENCY_SYMBOLS.get(currency.upper(), f"{currency.upper()} ") if currency else ""
        edges, labels = nice_edges(values[values > 0], prefix=symbol)
    binned = pd.cut(values, bins=[-math.inf, *edges], labels=list(labels), right=column != "monetary")
    counts = binned.value_counts().reindex(list(labels), fill_value=0)
    return pd.DataFrame({"bin": list(labels), "customers": counts.to_numpy()})


def segments_figure(profile: pd.DataFrame) -> go.Figure:
    return plot_bars(
        profile, category="segment", value="customers", title="Customers by segment", value_title="Customers"
    )


def distribution_figure(distribution: pd.DataFrame, *, label: str) -> go.Figure:
    unit = {"Recency": "days since the last purchase", "Frequency": "orders", "Spend": "net spend"}[label]
    return plot_bars(
        distribution,
        category="bin",
        value="customers",
        horizontal=False,
        sort=False,
        title=f"Customers by {label.lower()} ({unit})",
        value_title="Customers",
    )


def profile_table_html(profile: pd.DataFrame, *, currency: str) -> str:
    return ui.table_html(
        profile,
        currency=currency or "USD",
        money=["monetary_mean", "revenue"],
        shares=["share", "revenue_share"],
        decimals={"recency_mean": 0, "frequency_mean": 1},
        rename={
            "segment": "Segment",
            "customers": "Customers",
            "share": "Share",
            "recency_mean": "Days since last purchase",
            "frequency_mean": "Orders",
            "monetary_mean": "Spend per customer",
            "revenue": "Spend",
            "revenue_share": "Share of spend",
        },
    )


class CustomersDashboard:
    """Stores (or region) and history; segments table and chart, and how recency, frequency or spend spread."""

    def __init__(self, session: DashboardSession) -> None:
        self.session = session
        self.selection = pickers.selection_picker(session)
        self.history = ui.dropdown("Customers seen in", HISTORIES, 730, width="260px")
        self.figure = widgets.ToggleButtons(options=list(FIGURES), value="recency_days")
        self.status = ui.StatusLine()
        self.summary = ui.html_widget()
        self.segments_chart = figures.ChartSlot("sd-segments", height=360)
        self.distribution_chart = figures.ChartSlot("sd-distribution", height=360)
        self.table = ui.html_widget()
        with self.status.working("Scoring customers…"):
            self.update()
        refresh = ui.safely(self.status, "Scoring customers…", self.update)
        for control in (self.selection, self.history):
            control.observe(refresh, "value")
        self.figure.observe(ui.safely(self.status, "Drawing…", self.update_distribution), "value")
        charts = widgets.GridBox(
            [self.segments_chart.widget, widgets.VBox([self.figure, self.distribution_chart.widget])],
            layout=widgets.Layout(grid_template_columns="repeat(auto-fit, minmax(420px, 1fr))", grid_gap="16px"),
        )
        self.widget = widgets.VBox(
            [
                ui.controls(self.selection, self.history),
                self.status.widget,
                self.summary,
                charts,
                ui.heading("Segments"),
                self.table,
            ]
        )

    def customers(self) -> pd.DataFrame:
        return segmented(self.session, str(self.selection.value), int(self.history.value))

    def update(self) -> None:
        customers = self.customers()
        currency = self.session.warehouse.select(str(self.selection.value)).currency
        profile = segment_profile(customers)
        self.summary.value = ui.note_html(
            f"{len(customers):,} identified customers as of {self.session.last_day:%d %b %Y}; "
            "anonymous purchases are not included."
        )
        self.segments_chart.show(segments_figure(profile))
        self.table.value = profile_table_html(profile, currency=currency)
        self.update_distribution()

    def update_distribution(self) -> None:
        column = str(self.figure.value)
        label = {value: name for name, value in FIGURES}[column]
        currency = self.session.warehouse.select(str(self.selection.value)).currency
        distribution = value_distribution(self.customers(), column, currency=currency)
        self.distribution_chart.show(distribution_figure(distribution, label=label))
