"""Per-customer recency, frequency and monetary value (RFM), aggregated in SQL; the order-lines availability check.

Definitions (the segments analysis relies on them):
- only identified customers count: lines with ``customer_id`` NULL (anonymous tills) are left out;
- the period is ``start <= day <= as_of`` (``start`` None: all history up to ``as_of``);
- ``frequency`` is the number of distinct orders with at least one line of positive quantity (an order is
  identified by store and order id, so two stores' order "1001" are two orders);
- ``monetary`` is the net spend: the sum of ``quantity * unit_price - discount`` over every line, returns included
  (return lines have negative quantities), so it can be zero or negative for a customer who returned more than they
  bought in the period;
- ``first_day`` / ``last_day`` are the first and last days with a purchase (for a customer with returns only in the
  period: the first and last days with any line), and ``recency_days`` is ``as_of - last_day`` in days.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Engine, Select, case, distinct, func, literal, select

from report_lib.errors import InsufficientDataError
from report_lib.warehouse.loaders.common import explain_empty_period, normalise_stores, read_frame, require_order_lines
from report_lib.warehouse.schema import order_lines

log = logging.getLogger(__name__)

RFM_COLUMNS = ("customer_id", "recency_days", "frequency", "monetary", "first_day", "last_day")


def load_customer_rfm(
    engine: Engine,
    *,
    stores: str | Sequence[str],
    as_of: dt.date,
    start: dt.date | None = None,
) -> pd.DataFrame:
    """One row per identified customer of ``stores`` with RFM figures for ``start <= day <= as_of``.

    Columns: customer_id, recency_days, frequency, monetary, first_day, last_day (see the module docstring),
    sorted by customer_id.

    Raises:
        NeedsOrderLinesError: the stores have only aggregate totals (daily_metrics) and no order lines.
        InsufficientDataError: the stores have no data at all, or no identified customer in the period.
        ReportNotFoundError: a store code is not in the warehouse.
    """
    codes = normalise_stores(stores)
    with engine.connect() as conn:
        codes = require_order_lines(conn, codes, analysis="Customer segments")
        frame = read_frame(conn, _rfm_query(codes, as_of, start), ["customer_id", *RFM_COLUMNS[2:]])
        if frame.empty:
            raise InsufficientDataError(
                explain_empty_period(conn, codes, start, as_of, what="customer segments", needs_customers=True),
                details={"stores": codes, "start": start, "end": as_of},
            )
    return _finish_rfm(frame, as_of)


def _rfm_query(codes: list[str], as_of: dt.date, start: dt.date | None) -> Select[tuple[object, ...]]:
    """One GROUP BY customer_id; orders are told apart by store too when there are several stores."""
    lines = order_lines.c
    bought = lines.quantity > 0
    order_key = lines.order_id if len(codes) == 1 else lines.store_code + literal(":") + lines.order_id
    conditions = [lines.store_code.in_(codes), lines.customer_id.is_not(None), lines.day <= as_of]
    if start is not None:
        conditions.append(lines.day >= start)
    return (
        select(
            lines.customer_id,
            func.count(distinct(case((bought, order_key)))).label("frequency"),
            func.sum(lines.quantity * lines.unit_price - lines.discount).label("monetary"),
            func.coalesce(func.min(case((bought, lines.day))), func.min(lines.day)).label("first_day"),
            func.coalesce(func.max(case((bought, lines.day))), func.max(lines.day)).label("last_day"),
        )
        .where(*conditions)
        .group_by(lines.customer_id)
        .order_by(lines.customer_id)
    )


def _finish_rfm(frame: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    result = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype("str"),
            "frequency": pd.to_numeric(frame["frequency"]).astype("int64"),
            "monetary": pd.to_numeric(frame["monetary"]).astype("float64"),
            "first_day": pd.to_datetime(frame["first_day"]),
            "last_day": pd.to_datetime(frame["last_day"]),
        }
    )
    result.insert(1, "recency_days", (pd.Timestamp(as_of) - result["last_day"]).dt.days.astype("int64"))
    return result.loc[:, list(RFM_COLUMNS)]
