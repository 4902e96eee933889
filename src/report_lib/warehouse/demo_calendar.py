"""The chain-wide calendar of the demo: seasonality, holidays, promotions, price changes, category mix by day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from report_lib.warehouse import demo_catalog as cat

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROMO_WEEK_PROBABILITY = 0.18
PROMO_DISCOUNTS = (0.10, 0.15, 0.20, 0.25)
PROMO_CATEGORY_BOOST = 1.8  # the promoted category's share of lines is multiplied by this
PROMO_ORDER_BOOST = 1.05  # and the whole store gets a few more orders
PRICE_CHANGE_SHARE = 0.15


@dataclass(frozen=True)
class Calendar:
    """One entry per day of the period (index 0 = first day)."""

    first_day: dt.date
    days: int
    weekday: IntArray  # 0 = Monday
    season: FloatArray  # yearly multiplier of orders
    holiday: FloatArray  # 1 on ordinary days; 0 when closed
    promo_category: IntArray  # -1 when no promotion runs
    promo_discount: FloatArray  # share of the line value given as discount on promoted lines
    category_cum: FloatArray  # (days, categories): cumulative share of lines by category

    def date(self, index: int) -> dt.date:
        return self.first_day + dt.timedelta(days=int(index))

    def datetime64(self) -> npt.NDArray[np.datetime64]:
        return np.datetime64(self.first_day, "D") + np.arange(self.days)


@dataclass(frozen=True)
class Pricing:
    """Per product: the list price until ``change_day`` (day index), the new price from then on, the unit cost."""

    old_price: FloatArray
    new_price: FloatArray
    change_day: IntArray  # == days when the price never changes
    cost: FloatArray


def build_calendar(first_day: dt.date, days: int, rng: np.random.Generator) -> Calendar:
    dates = np.datetime64(first_day, "D") + np.arange(days)
    weekday = ((dates.astype("int64") + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday
    years = dates.astype("datetime64[Y]")
    day_of_year = (dates - years.astype("datetime64[D]")).astype(np.float64) + 1.0
    december, summer = cat.december_bump(day_of_year), cat.summer_bump(day_of_year)
    season = 1.0 + 0.15 * december + 0.03 * summer
    holiday = np.ones(days)
    last_day = first_day + dt.timedelta(days=days - 1)
    for day, (_name, factor) in cat.holidays(first_day, last_day).items():
        holiday[(day - first_day).days] = factor
    promo_category, promo_discount = _promotions(weekday, rng)
    weights = np.tile(cat.category_shares(), (days, 1))
    seasonal = {"Garden": 0.35 + 1.65 * summer, "Toys": 1.0 + 2.0 * december, "Electronics": 1.0 + 1.0 * december}
    for name, seasonal_factor in seasonal.items():
        weights[:, cat.CATEGORIES.index(name)] *= seasonal_factor
    promoted = promo_category >= 0
    weights[np.flatnonzero(promoted), promo_category[promoted]] *= PROMO_CATEGORY_BOOST
    category_cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    category_cum[:, -1] = 1.0
    return Calendar(first_day, days, weekday, season, holiday, promo_category, promo_discount, category_cum)


def _promotions(weekday: IntArray, rng: np.random.Generator) -> tuple[IntArray, FloatArray]:
    """Some Monday-to-Sunday weeks run a chain-wide discount on one category."""
    week = np.cumsum(weekday == 0)  # days before the first Monday form week 0
    weeks = int(week[-1]) + 1
    runs = rng.random(weeks) < PROMO_WEEK_PROBABILITY
    category = np.where(runs, rng.integers(0, len(cat.CATEGORIES), weeks), -1)
    discount = np.where(runs, rng.choice(PROMO_DISCOUNTS, weeks), 0.0)
    return category[week].astype(np.int64), discount[week].astype(np.float64)


def build_pricing(list_price: FloatArray, cost: FloatArray, days: int, rng: np.random.Generator) -> Pricing:
    """About 15% of products (never the loss leaders) change price once, mostly upwards, mid-period."""
    count = len(list_price)
    eligible = np.flatnonzero(cost < list_price)
    changing = rng.choice(eligible, size=round(PRICE_CHANGE_SHARE * count), replace=False)
    change_day = np.full(count, days, dtype=np.int64)
    low, high = (30, days - 30) if days > 120 else (days // 4, 3 * days // 4)
    change_day[changing] = rng.integers(low, high, len(changing))
    factor = np.where(rng.random(len(changing)) < 0.75, rng.uniform(1.04, 1.15, len(changing)), 0.0)
    factor = np.where(factor == 0.0, rng.uniform(0.88, 0.96, len(changing)), factor)
    new_price = list_price.copy()
    new_price[changing] = np.round(list_price[changing] * factor, 2)
    return Pricing(old_price=list_price, new_price=new_price, change_day=change_day, cost=cost)


def order_rate(calendar: Calendar, *, base: float, size: float, growth: float) -> FloatArray:
    """Expected orders per day of one store, before day-level noise and planted anomalies."""
    years = np.arange(calendar.days) / 365.25
    trend = (1.0 + growth) ** (years - years[-1] / 2)  # the period's middle is the store's base level
    promo = np.where(calendar.promo_category >= 0, PROMO_ORDER_BOOST, 1.0)
    weekday = cat.WEEKDAY_FACTORS[calendar.weekday] / cat.WEEKDAY_FACTORS.mean()
    return np.asarray(base * size * trend * weekday * calendar.season * calendar.holiday * promo)
