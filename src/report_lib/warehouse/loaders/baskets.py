"""Baskets for the co-purchase analysis: which products each order contained, and the product names to show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Engine, Select, literal, select

from report_lib.errors import InsufficientDataError
from report_lib.warehouse.loaders.common import (
    explain_empty_period,
    normalise_stores,
    read_frame,
    require_order_lines,
)
from report_lib.warehouse.schema import order_lines, products

ORDER_KEY_SEPARATOR = ":"


def load_basket_items(
    engine: Engine,
    *,
    stores: str | Sequence[str],
    start: dt.date,
    end: dt.date,
) -> pd.DataFrame:
    """Distinct (order_id, sku) pairs of the lines with positive quantity, ``start <= day <= end``.

    Returns are left out: a basket is what was bought. With one store ``order_id`` is the store's order id; with
    several it is ``"<store_code>:<order_id>"`` (order ids are unique only within a store). Sorted by order, sku.

    Raises:
        NeedsOrderLinesError: the stores have only aggregate totals (daily_metrics) and no order lines.
        InsufficientDataError: the stores have no data at all, or no purchase in the period.
        ReportNotFoundError: a store code is not in the warehouse.
    """
    codes = normalise_stores(stores)
    with engine.connect() as conn:
        codes = require_order_lines(conn, codes, analysis="Product recommendations")
        frame = read_frame(conn, _basket_query(codes, start, end), ["order_id", "sku"])
        if frame.empty:
            raise InsufficientDataError(
                explain_empty_period(conn, codes, start, end, what="baskets", needs_customers=False),
                details={"stores": codes, "start": start, "end": end},
            )
    return frame.astype({"order_id": "str", "sku": "str"})


def _basket_query(codes: list[str], start: dt.date, end: dt.date) -> Select[tuple[object, ...]]:
    lines = order_lines.c
    order_key = (
        lines.order_id if len(codes) == 1 else (lines.store_code + literal(ORDER_KEY_SEPARATOR) + lines.order_id)
    )
    return (
        select(order_key.label("order_id"), lines.sku)
        .distinct()
        .where(lines.store_code.in_(codes), lines.day >= start, lines.day <= end, lines.quantity > 0)
        .order_by(order_key, lines.sku)
    )


def load_products(engine: Engine, skus: Sequence[str] | None = None) -> pd.DataFrame:
    """Product facts for labelling tables: sku, name, category (all products, or those of ``skus``)."""
    query = select(products.c.sku, products.c.name, products.c.category).order_by(products.c.sku)
    if skus is not None:
        query = query.where(products.c.sku.in_(list(skus)))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame.from_records(rows, columns=["sku", "name", "category"])
    return frame.astype({"sku": "str", "name": "str", "category": "str"})
