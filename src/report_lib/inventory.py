"""Stock alerts: stock on hand against the reorder point and against days of cover; the list to reorder.

``stock`` is one row per sku (``load_stock``: sku, name, on_hand, reorder_point); ``velocity`` is units sold per day
per sku (``load_sales_velocity``, or a per-sku forecast of daily demand in the same column). Rules:

- ``days_of_cover = on_hand / daily_velocity``. With no sales (velocity 0) it is ``inf``: the stock does not run
  down at the current pace. With nothing on hand (``on_hand <= 0``) it is 0, whatever the velocity.
- A sku missing from ``velocity``, or with a NaN velocity, sold nothing in the window: velocity 0. A negative
  velocity (more returned than sold) counts as 0 too.
- Negative ``on_hand`` (book stock gone below zero, a known till artefact) is kept as it is, and the sku is out of
  stock.
- ``below_reorder`` means at or below the reorder point (``on_hand <= reorder_point``), the usual trigger.
- ``status``, the first that applies: ``out of stock`` (``on_hand <= 0``), ``reorder now`` (below_reorder),
  ``low cover`` (days of cover shorter than ``lead_time_days + safety_days``: it runs out before a delivery ordered
  today arrives), else ``ok``.
- ``suggested_order`` (0 for ``ok``): enough to cover the lead time plus ``cover_days`` of sales, and at least to
  lift the stock above the reorder point: ``ceil(max(reorder_point + 1, velocity · (lead_time_days + cover_days)) -
  on_hand)``, never negative.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from report_lib.errors import DataValidationError, InsufficientDataError, require_columns

log = logging.getLogger(__name__)

STATUSES = ("out of stock", "reorder now", "low cover", "ok")  # most urgent first
ALERT_COLUMNS = (
    "sku",
    "name",
    "on_hand",
    "reorder_point",
    "daily_velocity",
    "days_of_cover",
    "below_reorder",
    "status",
    "suggested_order",
)


def stock_alerts(
    stock: pd.DataFrame,
    velocity: pd.DataFrame,
    *,
    lead_time_days: float = 7,
    safety_days: float = 0,
    cover_days: float = 14,
    sku_col: str = "sku",
    name_col: str = "name",
    on_hand_col: str = "on_hand",
    reorder_point_col: str = "reorder_point",
    velocity_col: str = "daily_velocity",
) -> pd.DataFrame:
    """One row per sku of ``stock``: the columns of ALERT_COLUMNS, in the order of ``stock``.

    Raises:
        DataValidationError: missing columns, duplicated skus, NaN or non-numeric stock, negative days.
        InsufficientDataError: no stock rows (no inventory snapshot for the store on or before the day).
    """
    if min(lead_time_days, safety_days, cover_days) < 0:
        raise DataValidationError(
            f"lead_time_days={lead_time_days}, safety_days={safety_days}, cover_days={cover_days}; expected "
            "numbers of days, 0 or more"
        )
    table = _stock(stock, sku_col=sku_col, name_col=name_col, on_hand_col=on_hand_col, rop_col=reorder_point_col)
    table["daily_velocity"] = _velocity_by_sku(velocity, table["sku"], sku_col=sku_col, velocity_col=velocity_col)
    on_hand = table["on_hand"].to_numpy()
    rate = table["daily_velocity"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(on_hand <= 0, 0.0, np.where(rate > 0, on_hand / rate, np.inf))
    below = on_hand <= table["reorder_point"].to_numpy()
    status = np.select(
        [on_hand <= 0, below, cover < lead_time_days + safety_days], list(STATUSES[:3]), default=STATUSES[3]
    )
    target = np.maximum(table["reorder_point"].to_numpy() + 1, rate * (lead_time_days + cover_days))
    order = np.where(status == "ok", 0, np.ceil(np.maximum(target - on_hand, 0)))
    table = table.assign(
        days_of_cover=cover,
        below_reorder=below,
        status=pd.array(status, dtype="str"),
        suggested_order=order.astype(np.int64),
    )
    return table[list(ALERT_COLUMNS)]


def reorder_list(alerts: pd.DataFrame) -> pd.DataFrame:
    """The skus to reorder (status other than 'ok'), most urgent first.

    Urgency: status (out of stock, reorder now, low cover), then fewest days of cover, then fastest seller.
    """
    require_columns(alerts.columns, ["status", "days_of_cover", "daily_velocity"], what="stock alerts")
    unknown = sorted(set(alerts["status"].astype(str)) - set(STATUSES))
    if unknown:
        raise DataValidationError(f"stock alerts hold statuses {unknown}; expected {list(STATUSES)}")
    rank = alerts["status"].map({name: i for i, name in enumerate(STATUSES)}).astype("int64")
    todo = alerts.assign(_rank=rank, _speed=-alerts["daily_velocity"])
    todo = todo[todo["status"] != "ok"].sort_values(["_rank", "days_of_cover", "_speed"], kind="stable")
    return todo.drop(columns=["_rank", "_speed"]).reset_index(drop=True)


def _stock(stock: pd.DataFrame, *, sku_col: str, name_col: str, on_hand_col: str, rop_col: str) -> pd.DataFrame:
    require_columns(stock.columns, [sku_col, on_hand_col, rop_col], what="stock")
    if stock.empty:
        raise InsufficientDataError(
            "No stock levels: the store has no inventory snapshot on or before this day. "
            "Stock alerts need inventory snapshots (on hand and reorder point per sku); import them first."
        )
    if stock[sku_col].duplicated().any():
        repeated = sorted(stock.loc[stock[sku_col].duplicated(), sku_col].astype(str).unique())[:5]
        raise DataValidationError(f"stock repeats skus {repeated}; expected one row per sku (the latest snapshot)")
    try:
        on_hand = pd.to_numeric(stock[on_hand_col]).astype("float64")
        reorder_point = pd.to_numeric(stock[rop_col]).astype("float64")
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"stock columns {on_hand_col!r} and {rop_col!r} must be numeric: {exc}") from exc
    bad = on_hand.isna() | reorder_point.isna() | (reorder_point < 0)
    if bad.any():
        raise DataValidationError(
            f"{int(bad.sum())} stock rows have a missing on-hand or reorder point, or a negative reorder point "
            f"(skus {sorted(stock.loc[bad, sku_col].astype(str))[:5]}); expected numbers, reorder points 0 or more"
        )
    if (on_hand < 0).any():
        log.warning("stock: %d skus have negative on-hand stock; treated as out of stock", int((on_hand < 0).sum()))
    names = stock[name_col].astype(str) if name_col in stock.columns else stock[sku_col].astype(str)
    return pd.DataFrame(
        {"sku": stock[sku_col].astype(str), "name": names, "on_hand": on_hand, "reorder_point": reorder_point}
    ).reset_index(drop=True)


def _velocity_by_sku(velocity: pd.DataFrame, skus: pd.Series, *, sku_col: str, velocity_col: str) -> np.ndarray:
    require_columns(velocity.columns, [sku_col, velocity_col], what="sales velocity")
    if velocity[sku_col].duplicated().any():
        raise DataValidationError("sales velocity repeats skus; expected one row per sku")
    try:
        rate = pd.to_numeric(velocity[velocity_col]).astype("float64")
    except (ValueError, TypeError) as exc:
        raise DataValidationError(f"sales velocity column {velocity_col!r} must be numeric: {exc}") from exc
    if np.isinf(rate.to_numpy()).any():
        raise DataValidationError(f"sales velocity column {velocity_col!r} holds infinite values; expected units/day")
    by_sku = pd.Series(rate.to_numpy(), index=velocity[sku_col].astype(str).to_numpy())
    aligned = by_sku.reindex(skus.to_numpy()).to_numpy()
    return np.where(np.isnan(aligned) | (aligned < 0), 0.0, aligned)
