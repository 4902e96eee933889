"""Period totals and category revenue for the KPIs and insights, summed in SQL.

- ``load_period_totals``: the period's sums of ``daily_metrics`` (same rules as ``report_lib.kpis.period_totals``:
  weekly rows count when their last day is in the period; a metric is NULL/NaN when any counted row lacks it), with
  customers replaced by the exact COUNT(DISTINCT customer_id) over the period's order lines when the store has order
  lines in the period (``customers_exact`` True). Stores with aggregates only fall back to the sum of daily customers.
- ``load_category_revenue``: revenue by product category, with revenue defined as in the refresh:
  SUM(quantity * unit_price - discount) over order lines (returns reduce it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Engine, case, distinct, func, select

from report_lib.kpis import COMPARISONS, METRICS, weekly_rows_are_approximate
from report_lib.periods import Period, label_for
from report_lib.warehouse.bulk import as_date
from report_lib.warehouse.schema import daily_metrics, order_lines, products

CATEGORY_COLUMNS = ("category", "revenue")


def load_period_totals(engine: Engine, *, store: str, start: dt.date, end: dt.date) -> pd.Series:
    """One store's totals over the inclusive day range, as ``report_lib.kpis.period_totals`` returns them."""
    with engine.connect() as conn:
        sums = conn.execute(_daily_sums(store, start, end)).mappings().one()
        lines = conn.execute(_line_customers(store, start, end)).mappings().one()
    first_week, last_week = sums["first_week_end"], sums["last_week_end"]
    totals: dict[str, object] = {
        "start": pd.Timestamp(start),
        "end": pd.Timestamp(end),
        "label": label_for(start, end),
    }
    for name in METRICS:  # NULL when the period has no rows or any counted row lacks the metric
        complete = sums["rows"] and sums[f"{name}_known"] == sums["rows"]
        totals[name] = float(sums[f"{name}_sum"]) if complete else float("nan")
    exact = int(lines["lines"]) > 0
    if exact:
        totals["customers"] = float(lines["customers"])
    totals.update(
        rows=int(sums["rows"]),
        weekly_rows=int(sums["weekly_rows"] or 0),
        approximate=first_week is not None
        and weekly_rows_are_approximate(as_date(first_week), as_date(last_week), start=start, end=end),
        customers_exact=exact or int(sums["rows"]) == 1,
    )
    return pd.Series(totals, dtype=object)


def _daily_sums(store: str, start: dt.date, end: dt.date) -> Any:
    metrics = daily_metrics.c
    weekly_day = case((metrics.grain == "week", metrics.day))
    values: dict[str, ColumnElement[Any]] = {name: metrics[name] for name in METRICS}
    values["margin"] = func.coalesce(metrics.margin, metrics.revenue - metrics.cost)
    columns = [func.count().label("rows")]
    columns += [func.sum(case((metrics.grain == "week", 1), else_=0)).label("weekly_rows")]
    columns += [func.min(weekly_day).label("first_week_end"), func.max(weekly_day).label("last_week_end")]
    for name, value in values.items():
        columns += [func.sum(value).label(f"{name}_sum"), func.count(value).label(f"{name}_known")]
    return select(*columns).where(metrics.store_code == store, metrics.day >= start, metrics.day <= end)


def _line_customers(store: str, start: dt.date, end: dt.date) -> Any:
    lines = order_lines.c
    return select(
        func.count().label("lines"),
        func.count(distinct(lines.customer_id)).label("customers"),
    ).where(lines.store_code == store, lines.day >= start, lines.day <= end)


def load_comparison_totals(engine: Engine, *, store: str, period: Period) -> pd.DataFrame:
    """Totals of the period, the previous period and the same period last year (index 'current', 'previous',
    'last_year'), ready for ``report_lib.kpis.kpis_from_totals``."""
    rows = {
        name: load_period_totals(engine, store=store, start=p.start, end=p.end)
        for name, p in period.comparisons().items()
    }
    return pd.DataFrame(rows).T.loc[list(COMPARISONS)].infer_objects()


def load_category_revenue(engine: Engine, *, store: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Revenue by product category over the inclusive day range, largest first; empty for aggregate-only stores."""
    lines = order_lines.c
    revenue = func.sum(lines.quantity * lines.unit_price - lines.discount).label("revenue")
    query = (
        select(products.c.category, revenue)
        .select_from(order_lines.join(products, products.c.sku == lines.sku))
        .where(lines.store_code == store, lines.day >= start, lines.day <= end)
        .group_by(products.c.category)
        .order_by(revenue.desc(), products.c.category)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=list(CATEGORY_COLUMNS))
    return frame.astype({"category": "str", "revenue": "float64"})


def load_category_comparison(engine: Engine, *, store: str, period: Period) -> pd.DataFrame:
    """category, revenue (this period), previous (the previous period); 0 where a category sold nothing.

    The frame ``report_lib.insights.write_insights`` takes as ``category_changes``.
    """
    previous = period.previous()
    current = load_category_revenue(engine, store=store, start=period.start, end=period.end)
    before = load_category_revenue(engine, store=store, start=previous.start, end=previous.end)
    merged = current.merge(before.rename(columns={"revenue": "previous"}), on="category", how="outer")
    merged = merged.fillna({"revenue": 0.0, "previous": 0.0})
    return merged.sort_values(["revenue", "category"], ascending=[False, True], ignore_index=True)
