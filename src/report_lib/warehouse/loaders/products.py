"""Sales per product for margins: one GROUP BY in the database, joined to the product catalogue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine, case, func, select

from report_lib.warehouse.loaders.common import require_order_lines
from report_lib.warehouse.schema import order_lines, products

PRODUCT_SALES_COLUMNS = ("sku", "name", "category", "units", "revenue", "cost", "lines_without_cost")


def load_product_sales(
    engine: Engine,
    *,
    stores: str | Sequence[str],
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Per sku over the stores and inclusive day range: sku, name, category, units, revenue, cost, lines_without_cost.

    ``units`` and ``revenue`` are net of returns (negative quantities); revenue is ``quantity·unit_price - discount``.
    ``cost`` is ``SUM(quantity·unit_cost)`` of the lines, NaN when any line of the sku lacks a unit cost (the
    catalogue's ``products.unit_cost`` is not substituted: a line's cost is what it was sold at). Sorted by sku;
    empty when the stores sold nothing in the period.

    Raises:
        NeedsOrderLinesError: a store has aggregate totals (daily_metrics) but no order lines at all.
    """
    codes = [stores] if isinstance(stores, str) else list(stores)
    lines = order_lines.c
    per_sku = select(
        lines.sku,
        func.sum(lines.quantity).label("units"),
        func.sum(lines.quantity * lines.unit_price - lines.discount).label("revenue"),
        func.sum(lines.quantity * lines.unit_cost).label("cost"),
        func.sum(case((lines.unit_cost.is_(None), 1), else_=0)).label("lines_without_cost"),
    ).where(lines.store_code.in_(codes))
    if start is not None:
        per_sku = per_sku.where(lines.day >= start)
    if end is not None:
        per_sku = per_sku.where(lines.day <= end)
    totals = per_sku.group_by(lines.sku).subquery("totals")  # aggregate first, then join 1 row per sku (faster)
    query = (
        select(
            totals.c.sku, products.c.name, products.c.category, *[totals.c[name] for name in PRODUCT_SALES_COLUMNS[3:]]
        )
        .join(products, products.c.sku == totals.c.sku)
        .order_by(totals.c.sku)
    )
    with engine.connect() as conn:
        require_order_lines(conn, codes, analysis="Margins")
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(PRODUCT_SALES_COLUMNS))
    for column in ("units", "revenue", "cost", "lines_without_cost"):
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    frame["lines_without_cost"] = frame["lines_without_cost"].astype("int64")
    frame["cost"] = frame["cost"].where(frame["lines_without_cost"].eq(0), np.nan)
    return frame.astype({"sku": "str", "name": "str", "category": "str"})
