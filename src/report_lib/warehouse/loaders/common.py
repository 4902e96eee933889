"""What the loaders share: store selection, the order-lines check, why a period is empty, fast row reading."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, case, exists, func, select

from report_lib.errors import InsufficientDataError, NeedsOrderLinesError, ReportNotFoundError
from report_lib.warehouse.bulk import as_date
from report_lib.warehouse.schema import daily_metrics, order_lines, stores

log = logging.getLogger(__name__)

ORDER_LINES_NEEDED = (
    "order lines (one row per product sold: store_code, order_id, ordered_at, sku, quantity, unit_price, "
    "and customer_id for customer analyses)"
)


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
    """The stores among ``codes`` that have order lines (at any date).

    A store that has only aggregate totals is refused, even beside stores with lines: a regional figure without it
    would be a silent wrong number. A store with no data at all is left out (its period is simply empty).

    Raises:
        ReportNotFoundError: a code is not in the stores table.
        NeedsOrderLinesError: a store has aggregate totals but no order lines.
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
    aggregates = _aggregate_summary(conn, without) if without else []
    if aggregates:
        only_totals = sorted({phrase.split(":", 1)[0] for phrase in aggregates})
        raise NeedsOrderLinesError(
            f"{analysis} need {ORDER_LINES_NEEDED}, but store(s) {', '.join(only_totals)} have only aggregate totals: "
            f"{'; '.join(aggregates)}. Import an order-lines file for the store (runner.py import) to get this "
            "analysis; the aggregate totals still feed the KPI, trend, forecast and anomaly reports.",
            details={"stores": only_totals, "has": aggregates},
        )
    if with_lines:
        return with_lines
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
