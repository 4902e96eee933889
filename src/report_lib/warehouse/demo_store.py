"""One demo store's history, vectorised with numpy: anomalies, orders, customers, baskets, stock-outs.

Arrays are indexed by order (``order_*``) or by line (``line_*``); days are indexes into the Calendar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from report_lib.warehouse import demo_catalog as cat
from report_lib.warehouse.demo_calendar import Calendar, FloatArray, IntArray, Pricing

BoolArray = npt.NDArray[np.bool_]

IDENTIFIED_SHARE = 0.7
DAY_NOISE_SD = 0.05
ANOMALY_WARMUP_DAYS = 60
ANOMALY_MIN_GAP_DAYS = 7
GROUP_PROBABILITY = 0.15  # share of orders that contain one affinity group
STAPLE_PROBABILITY = 0.3  # share of orders that pick up one staple (eggs, bread, water)
ORDERS_PER_CUSTOMER = 14
BUCKET_DAYS = 30
NEW_CUSTOMER_DAYS = 60

# persona: share of customers, relative order rate, mean extra lines per basket, mean extra units per line
PERSONAS = ("frequent", "regular", "occasional", "new", "lapsed")
PERSONA_SHARE = np.array([0.05, 0.25, 0.45, 0.12, 0.13])
PERSONA_RATE = np.array([10.0, 3.5, 1.0, 2.5, 3.0])
PERSONA_EXTRA_LINES = np.array([1.0, 0.3, 0.15, 0.2, 0.2])
PERSONA_EXTRA_UNITS = np.array([0.2, 0.0, 0.0, 0.0, 0.0])
ANONYMOUS_EXTRA_LINES = 0.15


@dataclass(frozen=True)
class Anomalies:
    day: IntArray
    factor: FloatArray
    spike: BoolArray


@dataclass(frozen=True)
class Orders:
    """Sale orders in time order."""

    day: IntArray
    second: IntArray  # seconds after local midnight
    customer: IntArray  # -1 = anonymous; else index into the store's customers
    persona: IntArray  # of the customer; -1 = anonymous


@dataclass(frozen=True)
class Lines:
    order: IntArray
    product: IntArray
    quantity: IntArray
    unit_price: FloatArray
    unit_cost: FloatArray
    discount: FloatArray


@dataclass(frozen=True)
class StockOuts:
    """Stretches of days (inclusive) when a product had no stock in this store."""

    product: IntArray
    start: IntArray
    stop: IntArray


def plant_anomalies(calendar: Calendar, rng: np.random.Generator) -> Anomalies:
    """One or two days, after the warm-up, away from holidays and from each other, with orders x factor."""
    days = calendar.days
    quiet = calendar.holiday == 1.0
    quiet[1:] &= calendar.holiday[:-1] == 1.0
    quiet[:-1] &= calendar.holiday[1:] == 1.0
    quiet[: min(ANOMALY_WARMUP_DAYS, days // 2)] = False
    chosen: list[int] = []
    for day in rng.permutation(np.flatnonzero(quiet)):
        if all(abs(int(day) - other) >= ANOMALY_MIN_GAP_DAYS for other in chosen):
            chosen.append(int(day))
        if len(chosen) == 2:
            break
    chosen = sorted(chosen[: int(rng.integers(1, 3))])
    spike = rng.random(len(chosen)) < 0.5
    factor = np.round(np.where(spike, rng.uniform(2.5, 3.5, len(chosen)), rng.uniform(0.15, 0.3, len(chosen))), 2)
    return Anomalies(day=np.array(chosen, dtype=np.int64), factor=factor.astype(np.float64), spike=spike)


def daily_orders(rate: FloatArray, anomalies: Anomalies, rng: np.random.Generator) -> IntArray:
    """Poisson order counts around ``rate`` with mild day-level noise; planted days get their factor instead."""
    noise = rng.lognormal(-(DAY_NOISE_SD**2) / 2, DAY_NOISE_SD, len(rate))
    noise[anomalies.day] = anomalies.factor
    return rng.poisson(rate * noise).astype(np.int64)


def order_times(counts: IntArray, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """(day, second after midnight) of every order, sorted in time; hours follow the intraday profile."""
    day = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    profile = np.cumsum(cat.HOURLY_PROFILE / cat.HOURLY_PROFILE.sum())
    hour = np.minimum(np.searchsorted(profile, rng.random(len(day)), side="right"), len(profile) - 1)
    second = (cat.OPENING_HOUR + hour) * 3600 + rng.integers(0, 3600, len(day))
    order = np.lexsort((second, day))
    return day[order], second[order].astype(np.int64)


def customer_personas(identified_orders: int, rng: np.random.Generator) -> IntArray:
    count = max(20, round(identified_orders / ORDERS_PER_CUSTOMER))
    return rng.choice(len(PERSONAS), size=count, p=PERSONA_SHARE).astype(np.int64)


def assign_customers(
    day: IntArray, persona: IntArray, days: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Customer (or -1) and persona (or -1) of each order. Customers shop in 30-day buckets where they are active:
    new customers only in the last 60 days, lapsed ones only in the first year (first half of shorter periods)."""
    first_active, last_active = _active_buckets(persona, days, rng)
    bucket = (days - 1 - day) // BUCKET_DAYS  # 0 = the most recent 30 days
    customer = np.full(len(day), -1, dtype=np.int64)
    identified = rng.random(len(day)) < IDENTIFIED_SHARE
    rate = PERSONA_RATE[persona]
    for number in np.unique(bucket[identified]):
        active = (first_active >= number) & (last_active <= number)
        if not active.any():
            continue
        cumulative = np.cumsum(np.where(active, rate, 0.0))
        chosen = np.flatnonzero(identified & (bucket == number))
        draws = rng.random(len(chosen)) * cumulative[-1]
        customer[chosen] = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(persona) - 1)
    return customer, np.where(customer >= 0, persona[customer], -1)


def _active_buckets(persona: IntArray, days: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """Per customer: the oldest and the most recent bucket they shop in (bucket numbers count back from the end)."""
    oldest = (days - 1) // BUCKET_DAYS
    new_window = max(0, NEW_CUSTOMER_DAYS // BUCKET_DAYS - 1)
    joins = np.where(rng.random(len(persona)) < 0.6, oldest, rng.integers(0, oldest + 1, len(persona)))
    first = np.maximum(joins, min(new_window + 1, oldest))
    last = np.zeros(len(persona), dtype=np.int64)
    is_new, is_lapsed = persona == PERSONAS.index("new"), persona == PERSONAS.index("lapsed")
    first = np.where(is_new, min(new_window, oldest), first)
    first = np.where(is_lapsed, oldest, first)
    lapse_end = min(365, days // 2)  # lapsed customers stop before this day index
    last = np.where(is_lapsed, (days - 1 - lapse_end) // BUCKET_DAYS + 1, last)
    return first.astype(np.int64), last.astype(np.int64)


def stock_outs(calendar: Calendar, products: int, rng: np.random.Generator) -> tuple[StockOuts, IntArray]:
    """A few past stretches without stock, and 1-3 products out of stock right now (their stretch ends today)."""
    days = calendar.days
    past = int(rng.poisson(2 * days / 365))
    current = int(rng.integers(1, 4))
    product = rng.choice(products, size=past + current, replace=False).astype(np.int64)
    length = rng.integers(4, 15, past + current)
    start = np.concatenate([rng.integers(0, max(1, days - 20), past), days - rng.integers(3, 11, current)])
    start = np.clip(start, 0, days - 1)
    stop = np.minimum(np.concatenate([start[:past] + length[:past], np.full(current, days - 1)]), days - 1)
    return StockOuts(product, start.astype(np.int64), stop.astype(np.int64)), product[past:]


def basket_lines(
    orders: Orders, calendar: Calendar, catalogue: cat.Catalogue, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """(order, product) of every line, sorted by order, one line per product and order.

    Random lines follow the day's category mix and product popularity; some orders add one affinity group, some
    one everyday staple.
    """
    extra = np.where(orders.persona >= 0, PERSONA_EXTRA_LINES[orders.persona], ANONYMOUS_EXTRA_LINES)
    random_order = np.repeat(np.arange(len(orders.day)), 1 + rng.poisson(extra))
    category_cum = calendar.category_cum[orders.day[random_order]]
    category = (category_cum < rng.random(len(random_order))[:, None]).sum(axis=1)
    random_product = _pick_in_category(category, catalogue, rng)
    group_order, group_product = _group_lines(len(orders.day), catalogue, rng)
    staple_order = np.flatnonzero(rng.random(len(orders.day)) < STAPLE_PROBABILITY)
    staple_product = np.array(catalogue.staples)[rng.integers(0, len(catalogue.staples), len(staple_order))]
    order = np.concatenate([random_order, group_order, staple_order])
    key = order * len(catalogue.skus) + np.concatenate([random_product, group_product, staple_product])
    unique = np.unique(key)
    return (unique // len(catalogue.skus)).astype(np.int64), (unique % len(catalogue.skus)).astype(np.int64)


def _pick_in_category(category: IntArray, catalogue: cat.Catalogue, rng: np.random.Generator) -> IntArray:
    """A product of each line's category, by popularity: one searchsorted over per-category cumulative shares."""
    by_category = np.argsort(catalogue.category, kind="stable")
    keys = np.empty(len(by_category))
    for number in range(len(cat.CATEGORIES)):
        members = by_category[catalogue.category[by_category] == number]
        weights = np.cumsum(catalogue.popularity[members])
        where = np.flatnonzero(catalogue.category[by_category] == number)
        keys[where] = number + weights / weights[-1]
        keys[where[-1]] = number + 1.0
    position = np.searchsorted(keys, category + rng.random(len(category)) * 0.999999, side="right")
    return by_category[position].astype(np.int64)


def _group_lines(orders: int, catalogue: cat.Catalogue, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    members = np.concatenate([np.array(group) for group in catalogue.groups])
    sizes = np.array([len(group) for group in catalogue.groups])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    with_group = np.flatnonzero(rng.random(orders) < GROUP_PROBABILITY)
    group = rng.integers(0, len(sizes), len(with_group))
    order = np.repeat(with_group, sizes[group])
    offset = np.arange(len(order)) - np.repeat(np.cumsum(sizes[group]) - sizes[group], sizes[group])
    return order.astype(np.int64), members[np.repeat(starts[group], sizes[group]) + offset].astype(np.int64)


def price_lines(
    order: IntArray, product: IntArray, orders: Orders, calendar: Calendar, catalogue: cat.Catalogue,
    pricing: Pricing, rng: np.random.Generator,
) -> Lines:  # fmt: skip
    """Quantities, the price in force that day, the cost, and promotion discounts."""
    day = orders.day[order]
    category = catalogue.category[product]
    persona = orders.persona[order]
    extra = cat.extra_units()[category] + np.where(persona >= 0, PERSONA_EXTRA_UNITS[persona], 0.0)
    quantity = (1 + rng.poisson(extra)).astype(np.int64)
    unit_price = np.where(day >= pricing.change_day[product], pricing.new_price[product], pricing.old_price[product])
    promoted = calendar.promo_category[day] == category
    discount = np.where(promoted, np.round(quantity * unit_price * calendar.promo_discount[day], 2), 0.0)
    return Lines(order, product, quantity, unit_price, pricing.cost[product], discount)


def in_stock(order: IntArray, product: IntArray, day: IntArray, outages: StockOuts) -> BoolArray:
    """False for lines of a product on a day inside one of its stock-out stretches."""
    keep = np.ones(len(order), dtype=bool)
    for item, start, stop in zip(outages.product, outages.start, outages.stop, strict=True):
        keep &= ~((product == item) & (day >= start) & (day <= stop))
    return keep


@dataclass(frozen=True)
class Returns:
    """Return lines: which sale line came back, on which day and second, how many units (positive here)."""

    line: IntArray
    day: IntArray
    second: IntArray
    quantity: IntArray
    group: IntArray  # return order number, in time order


RETURN_SHARE = 0.02
RETURN_CATEGORY_WEIGHT = {"Electronics": 3.0, "Toys": 2.0, "Garden": 1.5, "Household": 1.2}


def plan_returns(
    lines: Lines, day: IntArray, calendar: Calendar, catalogue: cat.Catalogue, rng: np.random.Generator
) -> Returns:
    """About 2% of lines come back 1-10 days later (undiscounted lines only, more often electronics and toys);
    the lines of one order returned on one day form one return order."""
    weight = np.ones(len(cat.CATEGORIES))
    for name, value in RETURN_CATEGORY_WEIGHT.items():
        weight[cat.CATEGORIES.index(name)] = value
    line_weight = np.where(lines.discount == 0.0, weight[catalogue.category[lines.product]], 0.0)
    probability = RETURN_SHARE * line_weight / max(float(line_weight.mean()), 1e-9)
    line = np.flatnonzero(rng.random(len(day)) < probability)
    back = day[line] + rng.integers(1, 11, len(line))
    closed = calendar.holiday[np.minimum(back, calendar.days - 1)] == 0.0
    back = back + closed  # a return due on a closed day comes the day after
    line, back = line[back < calendar.days], back[back < calendar.days]
    if len(line) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Returns(empty, empty, empty, empty, empty)
    quantity = np.where(rng.random(len(line)) < 0.8, lines.quantity[line], 1 + rng.integers(0, lines.quantity[line]))
    group = np.unique(back * (int(lines.order.max()) + 1) + lines.order[line], return_inverse=True)[1].ravel()
    open_seconds = (cat.CLOSING_HOUR - cat.OPENING_HOUR) * 3600
    second = (cat.OPENING_HOUR * 3600 + rng.integers(0, open_seconds, int(group.max()) + 1))[group]
    by_time = np.lexsort((lines.order[line], second, back))
    line, back, second, quantity, group = (a[by_time] for a in (line, back, second, quantity, group))
    first_position = np.unique(group, return_index=True)[1]
    rank = np.empty(len(first_position), dtype=np.int64)
    rank[np.argsort(first_position, kind="stable")] = np.arange(len(first_position))
    return Returns(line, back.astype(np.int64), second.astype(np.int64), quantity.astype(np.int64), rank[group])
