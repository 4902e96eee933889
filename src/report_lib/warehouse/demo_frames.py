"""One demo store's generated history turned into table rows (DataFrames named and typed as the warehouse tables)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from report_lib.warehouse import demo_catalog as cat
from report_lib.warehouse import demo_store as gen
from report_lib.warehouse.demo_calendar import Calendar, IntArray, Pricing, order_rate

BASE_ORDERS_PER_DAY = 70.0
LEAD_TIME_DAYS = 7
VELOCITY_DAYS = 28
BELOW_REORDER_SHARE = 0.07


@dataclass(frozen=True)
class StoreRows:
    """The rows of one store, ready for insert_frame (batch_id added by the caller)."""

    customers: pd.DataFrame
    orders: pd.DataFrame
    lines: pd.DataFrame
    inventory: pd.DataFrame
    anomalies: pd.DataFrame
    return_lines: int


@dataclass(frozen=True)
class StoreContext:
    """What every store shares: the calendar, the catalogue and its prices, the volume scale."""

    calendar: Calendar
    catalogue: cat.Catalogue
    pricing: Pricing
    scale: float


def store_rows(
    code: str, *, size: float, growth: float, context: StoreContext, first_customer: int, rng: np.random.Generator
) -> StoreRows:
    """Generate one store's history and return its table rows; customer ids start at ``first_customer``."""
    calendar, catalogue = context.calendar, context.catalogue
    anomalies = gen.plant_anomalies(calendar, rng)
    rate = order_rate(calendar, base=BASE_ORDERS_PER_DAY * context.scale, size=size, growth=growth)
    day, second = gen.order_times(gen.daily_orders(rate, anomalies, rng), rng)
    personas = gen.customer_personas(round(len(day) * gen.IDENTIFIED_SHARE), rng)
    customer, persona = gen.assign_customers(day, personas, calendar.days, rng)
    orders = gen.Orders(day, second, customer, persona)
    order, product = gen.basket_lines(orders, calendar, catalogue, rng)
    outages, out_now = gen.stock_outs(calendar, len(catalogue.skus), rng)
    keep = gen.in_stock(order, product, orders.day[order], outages)
    orders, order = _drop_empty_orders(orders, order[keep])
    lines = gen.price_lines(order, product[keep], orders, calendar, catalogue, context.pricing, rng)
    returns = gen.plan_returns(lines, orders.day[lines.order], calendar, catalogue, rng)
    customer_ids, customers = _customers(orders, code, calendar, first_customer)
    sale_ids = _ids(f"{code}-", np.arange(1, len(orders.day) + 1), 7)
    return_ids = _ids(f"R{code}-", returns.group + 1, 6)
    sale_frame = _sale_lines(code, lines, orders, sale_ids, customer_ids, calendar, catalogue)
    return_frame = _return_lines(code, lines, orders, returns, return_ids, customer_ids, calendar, catalogue)
    return StoreRows(
        customers=customers,
        orders=_orders(code, sale_frame, return_frame),
        lines=pd.concat([sale_frame, return_frame], ignore_index=True),
        inventory=_inventory(code, lines, orders.day, out_now, calendar, catalogue, rng),
        anomalies=_anomalies(code, anomalies, calendar),
        return_lines=len(return_frame),
    )


def _drop_empty_orders(orders: gen.Orders, order: IntArray) -> tuple[gen.Orders, IntArray]:
    """Orders whose every line was out of stock did not happen; renumber the rest."""
    alive = np.unique(order)
    renumber = np.full(len(orders.day), -1, dtype=np.int64)
    renumber[alive] = np.arange(len(alive))
    kept = gen.Orders(orders.day[alive], orders.second[alive], orders.customer[alive], orders.persona[alive])
    return kept, renumber[order]


def _ids(prefix: str, numbers: IntArray, width: int) -> np.ndarray:
    if len(numbers) == 0:  # np.char.zfill cannot size an empty array
        return np.array([], dtype=object)
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width))


def _timestamps(calendar: Calendar, day: IntArray, second: IntArray) -> pd.Series:
    start = np.datetime64(calendar.first_day, "s")
    return pd.Series(start + (day * 86_400 + second).astype("timedelta64[s]"))


def _customers(
    orders: gen.Orders, code: str, calendar: Calendar, first_customer: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """Per order the customer id (None for anonymous), and the customers table rows of this store."""
    identified = orders.customer >= 0
    shoppers, first_order = np.unique(orders.customer[identified], return_index=True)
    rank = np.empty(len(shoppers), dtype=np.int64)
    rank[np.argsort(first_order, kind="stable")] = np.arange(len(shoppers))  # numbered by first purchase
    names = _ids("C", first_customer + rank, 6)
    per_order = np.full(len(orders.day), None, dtype=object)
    per_order[identified] = names[np.searchsorted(shoppers, orders.customer[identified])]
    first_seen = np.datetime64(calendar.first_day, "D") + orders.day[identified][first_order]
    table = pd.DataFrame({"customer_id": names, "home_store": code, "first_seen": first_seen})
    return per_order, table


def _sale_lines(
    code: str, lines: gen.Lines, orders: gen.Orders, order_ids: np.ndarray, customer_ids: np.ndarray,
    calendar: Calendar, catalogue: cat.Catalogue,
) -> pd.DataFrame:  # fmt: skip
    day = orders.day[lines.order]
    return pd.DataFrame(
        {
            "store_code": code,
            "order_id": order_ids[lines.order],
            "ordered_at": _timestamps(calendar, day, orders.second[lines.order]),
            "day": np.datetime64(calendar.first_day, "D") + day,
            "customer_id": customer_ids[lines.order],
            "sku": np.array(catalogue.skus)[lines.product],
            "quantity": lines.quantity,
            "unit_price": lines.unit_price,
            "unit_cost": lines.unit_cost,
            "discount": lines.discount,
        }
    )


def _return_lines(
    code: str, lines: gen.Lines, orders: gen.Orders, returns: gen.Returns, order_ids: np.ndarray,
    customer_ids: np.ndarray, calendar: Calendar, catalogue: cat.Catalogue,
) -> pd.DataFrame:  # fmt: skip
    original = lines.order[returns.line]
    return pd.DataFrame(
        {
            "store_code": code,
            "order_id": order_ids,
            "ordered_at": _timestamps(calendar, returns.day, returns.second),
            "day": np.datetime64(calendar.first_day, "D") + returns.day,
            "customer_id": customer_ids[original],
            "sku": np.array(catalogue.skus)[lines.product[returns.line]],
            "quantity": -returns.quantity,
            "unit_price": lines.unit_price[returns.line],
            "unit_cost": lines.unit_cost[returns.line],
            "discount": 0.0,
        }
    )


def _orders(code: str, *line_frames: pd.DataFrame) -> pd.DataFrame:
    """One row per order id (sales, then returns), in time order within each."""
    parts = [frame.drop_duplicates("order_id")[["order_id", "ordered_at", "customer_id"]] for frame in line_frames]
    return pd.concat(parts, ignore_index=True).assign(store_code=code)


def _inventory(
    code: str, lines: gen.Lines, order_day: IntArray, out_now: IntArray, calendar: Calendar,
    catalogue: cat.Catalogue, rng: np.random.Generator,
) -> pd.DataFrame:  # fmt: skip
    """Stock as of the last day: reorder points from the last 28 days' sales; ~7% below it; 1-3 at zero."""
    products = len(catalogue.skus)
    recent = order_day[lines.order] >= calendar.days - VELOCITY_DAYS
    velocity = np.bincount(lines.product[recent], weights=lines.quantity[recent], minlength=products) / VELOCITY_DAYS
    cover = velocity * LEAD_TIME_DAYS
    reorder_point = np.maximum(2, np.ceil(cover + 1.5 * np.sqrt(cover))).astype(np.int64)
    on_hand = reorder_point + np.ceil(velocity * rng.uniform(4, 25, products)).astype(np.int64)
    on_hand += rng.integers(1, 7, products)
    low = np.setdiff1d(np.flatnonzero(rng.random(products) < BELOW_REORDER_SHARE), out_now)
    on_hand[low] = rng.integers(1, reorder_point[low])
    on_hand[out_now] = 0
    return pd.DataFrame(
        {
            "store_code": code,
            "sku": list(catalogue.skus),
            "as_of": np.datetime64(calendar.date(calendar.days - 1), "D"),
            "on_hand": on_hand,
            "reorder_point": reorder_point,
        }
    )


def _anomalies(code: str, anomalies: gen.Anomalies, calendar: Calendar) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "store_code": code,
            "day": np.datetime64(calendar.first_day, "D") + anomalies.day,
            "kind": np.where(anomalies.spike, "spike", "drop"),
            "factor": anomalies.factor,
        }
    )


def first_day_of(end: dt.date, days: int) -> dt.date:
    return end - dt.timedelta(days=days - 1)
