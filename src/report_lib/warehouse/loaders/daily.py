"""Store facts and the pre-aggregated daily (or weekly) metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Engine, Select, select

from report_lib.warehouse.schema import daily_metrics, orders, stores

METRIC_COLUMNS = ("revenue", "orders", "units", "customers", "cost", "margin", "returns", "return_units")


def load_stores(engine: Engine, codes: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per store: code, name, region, timezone, currency, manager_emails, opened_on."""
    query = select(stores).order_by(stores.c.code)
    if codes is not None:
        query = query.where(stores.c.code.in_(list(codes)))
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    frame = pd.DataFrame([dict(row) for row in rows], columns=[c.name for c in stores.c])
    frame["opened_on"] = pd.to_datetime(frame["opened_on"])
    return frame


def stores_with_order_lines(engine: Engine) -> set[str]:
    """Codes of the stores that have order lines (the others have imported totals only, or nothing)."""
    with engine.connect() as conn:
        return set(conn.execute(select(orders.c.store_code).distinct()).scalars())


def load_daily_metrics(
    engine: Engine,
    *,
    stores: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """daily_metrics rows (both grains) for the stores and the inclusive day range, sorted by store and day.

    ``day`` comes back as datetime64; metrics are floats (NaN where unknown, e.g. cost without unit costs).
    """
    query = _daily_query(stores, start, end)
    with engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    frame["day"] = pd.to_datetime(frame["day"])
    for column in METRIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def _daily_query(codes: Sequence[str] | None, start: dt.date | None, end: dt.date | None) -> Select[tuple[object, ...]]:
    query = select(
        daily_metrics.c.store_code,
        daily_metrics.c.day,
        daily_metrics.c.grain,
        *[daily_metrics.c[name] for name in METRIC_COLUMNS],
        daily_metrics.c.source,
    ).order_by(daily_metrics.c.store_code, daily_metrics.c.day)
    if codes is not None:
        query = query.where(daily_metrics.c.store_code.in_(list(codes)))
    if start is not None:
        query = query.where(daily_metrics.c.day >= start)
    if end is not None:
        query = query.where(daily_metrics.c.day <= end)
    return query
