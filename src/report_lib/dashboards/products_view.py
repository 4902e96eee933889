"""The products view of a store: best sellers and margins of the period, products bought together, stock alerts.

Every table is the emailed reports' analysis: ``report_lib.margins.compute_margins`` on ``load_product_sales``,
``report_lib.recommend`` on the last 13 weeks of baskets up to the period's end (support threshold ``min_support``
from the parameters), and ``report_lib.inventory`` on the latest stock snapshot against the last 28 days' sales
(cover threshold ``low_cover_days``). Stores with aggregate totals only get a sentence instead (no order lines).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go

from report_lib.charts import plot_bars
from report_lib.dashboards import figures, pickers, ui
from report_lib.dashboards.session import DashboardSession
from report_lib.display import Note, attempt
from report_lib.inventory import reorder_list, stock_alerts
from report_lib.margins import compute_margins, margin_summary_note
from report_lib.recommend import co_purchase, name_items, top_pairs

TOP_N = 10
PAIRS = 10
BASKET_DAYS = 91
VELOCITY_DAYS = 28


@dataclass(frozen=True)
class ProductsData:
    by_product: pd.DataFrame
    by_category: pd.DataFrame
    pairs: pd.DataFrame | Note
    reorder: pd.DataFrame | Note


def products_data(session: DashboardSession, store: str, period_text: str) -> ProductsData:
    """The period's margins by product and category, the top pairs and the reorder list; cached."""

    def compute() -> ProductsData:
        period = session.period(period_text)
        sales = session.warehouse.product_sales([store], start=period.start, end=period.end)
        thresholds = session.thresholds(store)
        baskets = attempt(
            session.warehouse.basket_items,
            [store],
            start=period.end - dt.timedelta(days=BASKET_DAYS - 1),
            end=period.end,
        )
        pairs = attempt(co_purchase, baskets, min_support=thresholds.min_support)
        named = attempt(name_items, attempt(top_pairs, pairs, PAIRS), session.warehouse.products())
        velocity = session.warehouse.sales_velocity(store, end=session.last_day, days=VELOCITY_DAYS)
        alerts = attempt(stock_alerts, session.warehouse.stock(store), velocity, cover_days=thresholds.low_cover_days)
        return ProductsData(
            compute_margins(sales, by="sku"),
            compute_margins(sales, by="category"),
            named,
            attempt(reorder_list, alerts),
        )

    return session.cached(("products", store, period_text), compute)


def top_sellers_figure(by_product: pd.DataFrame, *, currency: str) -> go.Figure:
    top = by_product.nlargest(TOP_N, "revenue")
    return plot_bars(top, category="name", value="revenue", title=f"Top {TOP_N} products by revenue", currency=currency)


def margins_figure(by_category: pd.DataFrame, *, currency: str) -> go.Figure:
    return plot_bars(by_category, category="category", value="margin", title="Margin by category", currency=currency)


def margins_table_html(by_category: pd.DataFrame, *, currency: str) -> str:
    note = ui.note_html(margin_summary_note(by_category))
    shown = by_category[["category", "units", "revenue", "cost", "margin", "margin_pct", "contribution"]]
    return note + ui.table_html(
        shown,
        currency=currency,
        money=["revenue", "cost", "margin"],
        percent=["margin_pct"],
        shares=["contribution"],
        counts=["units"],
        rename={"category": "Category", "units": "Units", "revenue": "Revenue", "cost": "Cost", "margin": "Margin",
                "margin_pct": "Margin %", "contribution": "Share of margin"},
    )  # fmt: skip


def pairs_table_html(pairs: pd.DataFrame | Note) -> str:
    if isinstance(pairs, pd.DataFrame):
        pairs = pairs[["item_a_name", "item_b_name", "orders_together", "support", "confidence_a_to_b", "lift"]]
    return ui.table_html(
        pairs,
        shares=["support", "confidence_a_to_b"],
        decimals={"lift": 1},
        rename={"item_a_name": "Bought", "item_b_name": "Also bought", "orders_together": "Orders with both",
                "support": "Share of orders", "confidence_a_to_b": "Confidence", "lift": "Lift"},
    )  # fmt: skip


REORDER_COLUMNS = {
    "sku": "SKU",
    "name": "Product",
    "status": "Status",
    "on_hand": "On hand",
    "reorder_point": "Reorder point",
    "daily_velocity": "Sold per day",
    "days_of_cover": "Days of cover",
    "suggested_order": "Suggested order",
}


def reorder_table_html(reorder: pd.DataFrame | Note) -> str:
    if isinstance(reorder, pd.DataFrame):
        if reorder.empty:
            return ui.note_html("Nothing to reorder: every product is above its reorder point with enough cover.")
        reorder = reorder[list(REORDER_COLUMNS)]
    return ui.table_html(
        reorder,
        decimals={"daily_velocity": 1, "days_of_cover": 1, "on_hand": 0, "reorder_point": 0},
        rename=REORDER_COLUMNS,
        limit=25,
    )


class ProductsDashboard:
    """Store and period; top sellers, margins, pairs and the reorder list update together."""

    def __init__(self, session: DashboardSession) -> None:
        self.session = session
        self.store = pickers.selection_picker(session, regions=False)
        self.period = pickers.period_picker(session)
        self.status = ui.StatusLine()
        self.sellers_chart = figures.ChartSlot("sd-sellers", height=400)
        self.margins_chart = figures.ChartSlot("sd-margins", height=400)
        self.margins = ui.html_widget()
        self.pairs = ui.html_widget()
        self.reorder = ui.html_widget()
        with self.status.working("Loading product figures…"):
            self.update()
        refresh = ui.safely(self.status, "Loading product figures…", self.update)
        for control in (self.store, self.period):
            control.observe(refresh, "value")
        charts = widgets.GridBox(
            [self.sellers_chart.widget, self.margins_chart.widget],
            layout=widgets.Layout(grid_template_columns="repeat(auto-fit, minmax(420px, 1fr))", grid_gap="16px"),
        )
        self.widget = widgets.VBox(
            [
                ui.controls(self.store, self.period),
                self.status.widget,
                charts,
                ui.heading("Margin by category"),
                self.margins,
                ui.heading("Bought together (last 13 weeks)"),
                self.pairs,
                ui.heading("Stock to reorder (latest snapshot, last 28 days' sales)"),
                self.reorder,
            ]
        )

    def update(self) -> None:
        selection = self.session.warehouse.select(str(self.store.value))
        data = products_data(self.session, selection.store, str(self.period.value))
        currency = selection.currency or "USD"
        self.sellers_chart.show(top_sellers_figure(data.by_product, currency=currency))
        self.margins_chart.show(margins_figure(data.by_category, currency=currency))
        self.margins.value = margins_table_html(data.by_category, currency=currency)
        self.pairs.value = pairs_table_html(data.pairs)
        self.reorder.value = reorder_table_html(data.reorder)
