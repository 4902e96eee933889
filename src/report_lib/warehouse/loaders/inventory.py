"""Stock levels (latest inventory snapshot per sku) and recent sales velocity per sku, for stock alerts."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine, and_, func, select

from report_lib.errors import DataValidationError
from report_lib.warehouse.loaders.common import require_order_lines
from report_lib.warehouse.schema import inventory_snapshots, order_lines, products

STOCK_COLUMNS = ("sku", "name", "category", "as_of", "on_hand", "reorder_point")
VELOCITY_COLUMNS = ("sku", "units_sold", "days", "daily_velocity")


def load_stock(engine: Engine, *, store: str, as_of: dt.date | None = None) -> pd.DataFrame:
    """The latest snapshot on or before ``as_of`` (default: the latest) per sku of the store, with name and category.

    Columns: sku, name, category, as_of (datetime64), on_hand, reorder_point; sorted by sku. Empty when the store
    has no snapshot by then.
    """
    snap = inventory_snapshots
    latest = select(snap.c.sku, func.max(snap.c.as_of).label("as_of")).where(snap.c.store_code == store)
    if as_of is not None:
        latest = latest.where(snap.c.as_of <= as_of)
    newest = latest.group_by(snap.c.sku).subquery("newest")
    query = (
        select(snap.c.sku, products.c.name, products.c.category, snap.c.as_of, snap.c.on_hand, snap.c.reorder_point)
        .join(newest, and_(newest.c.sku == snap.c.sku, newest.c.as_of == snap.c.as_of))
        .join(products, products.c.sku == snap.c.sku)
        .where(snap.c.store_code == store)
        .order_by(snap.c.sku)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(STOCK_COLUMNS))
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[ns]")
    for column in ("on_hand", "reorder_point"):
        frame[column] = pd.to_numeric(frame[column]).astype("int64")
    return frame.astype({"sku": "str", "name": "str", "category": "str"})


def load_sales_velocity(engine: Engine, *, store: str, end: dt.date, days: int = 28) -> pd.DataFrame:
    """Units sold per day per sku over the ``days`` days ending on ``end`` (inclusive): sku, units_sold, days,
    daily_velocity.

    Only sales count (quantity > 0): returns are not subtracted, so that a returned item does not hide the demand.
    Skus with no sale in the window are absent (``stock_alerts`` reads that as velocity 0). ``end`` should be the
    last day with data: days after it count as days without sales.

    Raises:
        DataValidationError: ``days`` is not positive.
        NeedsOrderLinesError: the store has aggregate totals but no order lines.
    """
    if days < 1:
        raise DataValidationError(f"days is {days}; expected a window of at least 1 day")
    start = end - dt.timedelta(days=days - 1)
    query = (
        select(order_lines.c.sku, func.sum(order_lines.c.quantity).label("units_sold"))
        .where(
            order_lines.c.store_code == store,
            order_lines.c.day >= start,
            order_lines.c.day <= end,
            order_lines.c.quantity > 0,
        )
        .group_by(order_lines.c.sku)
        .order_by(order_lines.c.sku)
    )
    with engine.connect() as conn:
        require_order_lines(conn, [store], analysis="Stock alerts")
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=["sku", "units_sold"]).astype({"sku": "str"})
    frame["units_sold"] = pd.to_numeric(frame["units_sold"]).astype("int64")
    frame["days"] = days
    frame["daily_velocity"] = frame["units_sold"] / days
    return frame[list(VELOCITY_COLUMNS)]
