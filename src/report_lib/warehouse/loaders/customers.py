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
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Select, case, distinct, exists, func, literal, select

from report_lib.errors import InsufficientDataError, NeedsOrderLinesError, ReportNotFoundError
from report_lib.warehouse.bulk import as_date
from report_lib.warehouse.schema import daily_metrics, order_lines, stores

log = logging.getLogger(__name__)

RFM_COLUMNS = ("customer_id", "recency_days", "frequency", "monetary", "first_day", "last_day")
ORDER_LINES_NEEDED = (
    "order lines (one row per product sold: store_code, order_id, ordered_at, sku, quantity, unit_price, "
    "and customer_id for customer analyses)"
)


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


def read_frame(conn: Connection, query: Select[Any], columns: Sequence[str]) -> pd.DataFrame:
    """Run ``query`` on the driver's cursor and return its rows as a DataFrame with ``columns``.

    SQLAlchemy's Row objects cost ~2.5 µs each here (2.5 s for a store's million basket rows) and pandas'
    read_sql adds more; the driver's plain tuples do not. Parameters stay bound; SQLite gets dates as ISO
    strings, as SQLAlchemy's own Date type would send them. Values come back as the driver returns them.
    """
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    sqlite = conn.dialect.name == "sqlite"
    params = {name: _driver_value(value, sqlite=sqlite) for name, value in compiled.params.items()}
    bound: Any = tuple(params[name] for name in compiled.positiontup or ()) if compiled.positional else params
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(str(compiled), bound)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return pd.DataFrame.from_records(rows, columns=list(columns), nrows=len(rows))


def _driver_value(value: object, *, sqlite: bool) -> object:
    if sqlite and isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if sqlite and isinstance(value, dt.date):
        return value.isoformat()
    return value


def normalise_stores(stores: str | Sequence[str]) -> list[str]:
    """A list of store codes from one code or a sequence of codes; refuses an empty selection."""
    codes = [stores] if isinstance(stores, str) else list(dict.fromkeys(stores))
    if not codes:
        raise InsufficientDataError(
            "No stores were selected; expected one store code or a list of them (e.g. stores=['S01'])."
        )
    return codes


def require_order_lines(conn: Connection, codes: list[str], *, analysis: str) -> list[str]:
    """The stores among ``codes`` that have order lines (at any date); refuses when none has any.

    Stores without order lines are left out with a warning when others have some (a regional roll-up still runs).

    Raises:
        ReportNotFoundError: a code is not in the stores table.
        NeedsOrderLinesError: none of the stores has order lines, but some have aggregate totals.
        InsufficientDataError: none of the stores has any data.
    """
    known = set(conn.execute(select(stores.c.code).where(stores.c.code.in_(codes))).scalars())
    for code in codes:
        if code not in known:
            all_codes = conn.execute(select(stores.c.code)).scalars().all()
            raise ReportNotFoundError("store", code, all_codes)
    with_lines = [
        code for code in codes if conn.execute(select(exists().where(order_lines.c.store_code == code))).scalar()
    ]
    without = [code for code in codes if code not in with_lines]
    if with_lines:
        if without:
            log.warning("%s: stores %s have no order lines and are left out", analysis, without)
        return with_lines
    aggregates = _aggregate_summary(conn, codes)
    if aggregates:
        raise NeedsOrderLinesError(
            f"{analysis} need {ORDER_LINES_NEEDED}, but store(s) {', '.join(codes)} have only aggregate totals: "
            f"{'; '.join(aggregates)}. Import an order-lines file for the store (runner.py import) to get this "
            "analysis; the aggregate totals still feed the KPI, trend and forecast reports.",
            details={"stores": codes, "has": aggregates},
        )
    raise InsufficientDataError(
        f"{analysis}: store(s) {', '.join(codes)} have no data at all (no order lines, no daily totals). "
        "Load data with runner.py import (or runner.py demo for generated data).",
        details={"stores": codes},
    )


def _aggregate_summary(conn: Connection, codes: list[str]) -> list[str]:
    """One phrase per store and grain with daily_metrics rows, e.g. "S1: 143 week rows (import), 2010-02-05..."."""
    metrics = daily_metrics.c
    query = (
        select(
            metrics.store_code,
            metrics.grain,
            metrics.source,
            func.count().label("rows"),
            func.min(metrics.day).label("first"),
            func.max(metrics.day).label("last"),
        )
        .where(metrics.store_code.in_(codes))
        .group_by(metrics.store_code, metrics.grain, metrics.source)
        .order_by(metrics.store_code, metrics.grain, metrics.source)
    )
    return [
        f"{row.store_code}: {row.rows} {row.grain} rows in daily_metrics (source {row.source!r}) "
        f"from {as_date(row.first)} to {as_date(row.last)}"
        for row in conn.execute(query)
    ]


def explain_empty_period(
    conn: Connection, codes: list[str], start: dt.date | None, end: dt.date, *, what: str, needs_customers: bool
) -> str:
    """Why a query on stores that do have order lines came back empty: the period, anonymous or return lines only."""
    lines = order_lines.c
    in_stores = lines.store_code.in_(codes)
    span = conn.execute(select(func.min(lines.day), func.max(lines.day)).where(in_stores)).one()
    period = [in_stores, lines.day <= end] + ([lines.day >= start] if start is not None else [])
    counts = conn.execute(
        select(
            func.count(),
            func.count(lines.customer_id),
            func.coalesce(func.sum(case((lines.quantity > 0, 1), else_=0)), 0),
        ).where(*period)
    ).one()
    head = f"No {what} for store(s) {', '.join(codes)} from {start or 'the beginning'} to {end}"
    if not counts[0]:
        return (
            f"{head}: no order lines in that period. The stores' order lines run from {as_date(span[0])} "
            f"to {as_date(span[1])}; choose a period inside it."
        )
    if needs_customers and not counts[1]:
        return (
            f"{head}: the period has {counts[0]} order lines but none with a customer_id (anonymous sales only). "
            "Customer analyses need identified customers (loyalty card or account ids in the order lines)."
        )
    return f"{head}: the period's {counts[0]} order lines are all returns (no positive quantity)."
