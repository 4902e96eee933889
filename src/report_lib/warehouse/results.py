"""Analysis results kept in the warehouse: forecasts (with their backtest scores) and detected anomalies.

Forecasts: one row per forecast day, all rows of one run sharing ``made_at``; saving again with the same
(store, metric, made_at) replaces that run, so a retried report does not duplicate it. ``backtest_mase`` is the
backtest MASE of the SARIMA chosen by AIC (NULL when none could be fitted; infinite when one of its fold forecasts
was implausible), ``naive_mase`` that of seasonal naive, ``fallback`` whether seasonal naive made the forecast.

Anomalies: one row per flagged (store, metric, day, method); saving flags replaces the previous rows of the same
store, metric, method and days, with the new ``detected_at``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, select

from report_lib.errors import DataValidationError, require_columns
from report_lib.warehouse.bulk import as_date
from report_lib.warehouse.schema import detected_anomalies, forecasts, stores

if TYPE_CHECKING:  # the forecast module imports statsmodels (~1.5 s); saving anomalies should not pay for it
    from report_lib.forecast import ForecastResult

log = logging.getLogger(__name__)

FORECAST_FRAME_COLUMNS = (
    "day",
    "mean",
    "lo80",
    "hi80",
    "lo95",
    "hi95",
    "model",
    "backtest_mase",
    "naive_mase",
    "fallback",
    "made_at",
)
BAND_COLUMNS = ("mean", "lo80", "hi80", "lo95", "hi95")
ANOMALY_COLUMNS = ("store_code", "metric", "day", "method", "value", "score", "direction", "severity")
DIRECTIONS = ("up", "down")
DELETE_CHUNK = 500  # days per DELETE ... IN (...): far below every driver's parameter limit


def save_forecast(
    engine: Engine,
    *,
    store_code: str,
    metric: str,
    result: ForecastResult,
    made_at: dt.datetime | None = None,
) -> int:
    """Store ``result``'s forecast rows for the store and metric; returns the number of rows written."""
    stamp = (made_at or dt.datetime.now()).replace(tzinfo=None)
    days = [as_date(day) for day in pd.to_datetime(result.forecast["date"]).dt.date]
    bands = result.forecast.loc[:, list(BAND_COLUMNS)].to_numpy(dtype="float64")
    shared = {
        "store_code": store_code,
        "metric": metric,
        "made_at": stamp,
        "model": result.model,
        "backtest_mase": _nullable(result.mase_model),
        "naive_mase": _nullable(result.mase_naive),
        "fallback": bool(result.fallback),
    }
    rows = [
        {**shared, "day": day, **dict(zip(BAND_COLUMNS, band.tolist(), strict=True))}
        for day, band in zip(days, bands, strict=True)
    ]
    with engine.begin() as conn:
        _require_stores(conn, [store_code])
        conn.execute(
            delete(forecasts).where(
                forecasts.c.store_code == store_code, forecasts.c.metric == metric, forecasts.c.made_at == stamp
            )
        )
        if rows:
            conn.execute(forecasts.insert(), rows)
    log.info("saved %d forecast rows for %s/%s made at %s", len(rows), store_code, metric, stamp)
    return len(rows)


def load_latest_forecast(engine: Engine, *, store_code: str, metric: str) -> pd.DataFrame:
    """The most recent saved forecast of the store and metric, one row per day (empty when none was saved)."""
    latest = (
        select(func.max(forecasts.c.made_at))
        .where(forecasts.c.store_code == store_code, forecasts.c.metric == metric)
        .scalar_subquery()
    )
    query = (
        select(*[forecasts.c[name] for name in FORECAST_FRAME_COLUMNS])
        .where(forecasts.c.store_code == store_code, forecasts.c.metric == metric, forecasts.c.made_at == latest)
        .order_by(forecasts.c.day)
    )
    with engine.connect() as conn:
        records = [dict(row) for row in conn.execute(query).mappings()]
    frame = pd.DataFrame(records, columns=list(FORECAST_FRAME_COLUMNS))
    frame["day"] = pd.to_datetime(frame["day"])
    frame["made_at"] = pd.to_datetime(frame["made_at"])
    frame["fallback"] = frame["fallback"].astype(bool)
    for name in (*BAND_COLUMNS, "backtest_mase", "naive_mase"):
        frame[name] = pd.to_numeric(frame[name]).astype("float64")
    return frame


def save_anomalies(engine: Engine, flags: pd.DataFrame, *, detected_at: dt.datetime | None = None) -> int:
    """Store flagged periods (report_lib.anomalies.detect_anomalies' output; extra columns are ignored).

    Rows already stored for the same store, metric, method and day are replaced. Returns the rows written.
    """
    rows = _anomaly_rows(flags, (detected_at or dt.datetime.now()).replace(tzinfo=None))
    with engine.begin() as conn:
        _require_stores(conn, sorted({str(row["store_code"]) for row in rows}))
        for (store_code, metric, method), days in _days_by_key(rows).items():
            for start in range(0, len(days), DELETE_CHUNK):
                conn.execute(
                    delete(detected_anomalies).where(
                        detected_anomalies.c.store_code == store_code,
                        detected_anomalies.c.metric == metric,
                        detected_anomalies.c.method == method,
                        detected_anomalies.c.day.in_(days[start : start + DELETE_CHUNK]),
                    )
                )
        if rows:
            conn.execute(detected_anomalies.insert(), rows)
    log.info("saved %d anomaly flags", len(rows))
    return len(rows)


def load_anomalies(
    engine: Engine,
    *,
    store_code: str | None = None,
    metric: str | None = None,
    method: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Stored anomaly flags, filtered by any of store, metric, method and the inclusive day range.

    Sorted by store, day, metric and method; ``day`` and ``detected_at`` come back as datetime64.
    """
    table = detected_anomalies
    conditions: list[Any] = []
    for column, wanted in ((table.c.store_code, store_code), (table.c.metric, metric), (table.c.method, method)):
        if wanted is not None:
            conditions.append(column == wanted)
    if start is not None:
        conditions.append(table.c.day >= start)
    if end is not None:
        conditions.append(table.c.day <= end)
    columns = [*ANOMALY_COLUMNS, "detected_at"]
    query = select(*[table.c[name] for name in columns]).order_by(
        table.c.store_code, table.c.day, table.c.metric, table.c.method
    )
    if conditions:
        query = query.where(*conditions)
    with engine.connect() as conn:
        records = [dict(row) for row in conn.execute(query).mappings()]
    frame = pd.DataFrame(records, columns=columns)
    frame["day"] = pd.to_datetime(frame["day"])
    frame["detected_at"] = pd.to_datetime(frame["detected_at"])
    for name in ("value", "score"):
        frame[name] = pd.to_numeric(frame[name]).astype("float64")
    return frame


def _nullable(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _require_stores(conn: Connection, codes: Sequence[str]) -> None:
    if not codes:
        return
    known = set(conn.execute(select(stores.c.code).where(stores.c.code.in_(list(codes)))).scalars())
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise DataValidationError(
            f"Stores {unknown} are not in the warehouse's stores table; results are kept per known store. "
            "Import the store (runner.py import) or check the store code.",
            details={"unknown_stores": unknown},
        )


def _anomaly_rows(flags: pd.DataFrame, detected_at: dt.datetime) -> list[dict[str, Any]]:
    require_columns(flags.columns, ANOMALY_COLUMNS, what="Anomaly flags")
    frame = flags.loc[:, list(ANOMALY_COLUMNS)]
    incomplete = frame.isna().any(axis=1).to_numpy()
    if incomplete.any():
        raise DataValidationError(
            f"{int(incomplete.sum())} anomaly flags have empty fields (first at position {int(incomplete.argmax())}); "
            f"expected every one of {list(ANOMALY_COLUMNS)}. Save the output of detect_anomalies unchanged.",
            details={"rows": int(incomplete.sum())},
        )
    key = ["store_code", "metric", "day", "method"]
    duplicated = frame.loc[frame.duplicated(subset=key), key]
    if not duplicated.empty:
        first = duplicated.iloc[0].tolist()
        raise DataValidationError(
            f"{len(duplicated)} anomaly flags repeat a (store_code, metric, day, method) already flagged, e.g. "
            f"{first}; expected one flag per store, metric, day and method. Drop the duplicates before saving.",
            details={"rows": len(duplicated)},
        )
    bad_direction = sorted(set(frame["direction"].astype(str)) - set(DIRECTIONS))
    if bad_direction:
        raise DataValidationError(
            f"Anomaly directions {bad_direction} are not allowed; expected 'up' or 'down'.",
            details={"directions": bad_direction},
        )
    days = pd.to_datetime(frame["day"])
    return [
        {
            "store_code": str(store_code),
            "metric": str(metric),
            "day": day.date(),
            "method": str(method),
            "value": float(value),
            "score": float(score),
            "direction": str(direction),
            "severity": str(severity),
            "detected_at": detected_at,
        }
        for store_code, metric, day, method, value, score, direction, severity in zip(
            frame["store_code"],
            frame["metric"],
            days,
            frame["method"],
            frame["value"],
            frame["score"],
            frame["direction"],
            frame["severity"],
            strict=True,
        )
    ]


def _days_by_key(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], list[dt.date]]:
    keyed: dict[tuple[str, str, str], list[dt.date]] = {}
    for row in rows:
        keyed.setdefault((row["store_code"], row["metric"], row["method"]), []).append(row["day"])
    return keyed
