"""Plain sentences from the KPI table, for report headers and emails, and the one place numbers are formatted.

Every number a sentence shows is a value of the KPI table (``report_lib.kpis``) or of the category table
(``explain_change``), formatted by the helpers below; the wording is fixed, so the same numbers always give the same
sentences. Changes smaller than ``flat_pct`` (0.5 % by default) read as "flat".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd

from report_lib.errors import require_columns
from report_lib.periods import Period

MINUS = "\u2212"  # typographic minus: "−$4,100"
CURRENCY_SYMBOLS: Mapping[str, str] = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CNY": "¥"}
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "CLP", "ISK", "HUF"})
MISSING = "n/a"
MAX_SENTENCES = 5


def format_money(value: float, currency: str = "USD", *, decimals: int | None = None, signed: bool = False) -> str:
    """'$41,200', '€34.33', '−£4,100', 'CHF 1,250'; cents only below 1,000 (and never for yen-like currencies)."""
    if _missing(value):
        return MISSING
    code = currency.upper()
    if decimals is None:
        decimals = 0 if abs(value) >= 1000 or code in ZERO_DECIMAL_CURRENCIES else 2
    symbol = CURRENCY_SYMBOLS.get(code)
    amount = f"{abs(value):,.{decimals}f}"
    return _signed(f"{symbol}{amount}" if symbol else f"{code} {amount}", round(value, decimals), signed=signed)


def format_count(value: float, *, signed: bool = False) -> str:
    """'1,200' (rounded to a whole number)."""
    if _missing(value):
        return MISSING
    return _signed(f"{abs(round(value)):,}", round(value), signed=signed)


def format_pct(value: float, *, decimals: int = 1, signed: bool = False) -> str:
    """'12.3%' from 12.3 (values are already in percent)."""
    if _missing(value):
        return MISSING
    return _signed(f"{abs(value):,.{decimals}f}%", round(value, decimals), signed=signed)


def format_kpi(value: float, unit: str, currency: str = "USD") -> str:
    """A KPI value by its unit: 'money', 'count', 'ratio' ('2.40') or 'percent' ('43.3%')."""
    if unit == "money":
        return format_money(value, currency)
    if unit == "count":
        return format_count(value)
    if unit == "percent":
        return format_pct(value)
    return MISSING if _missing(value) else f"{value:,.2f}"


def _signed(text: str, rounded: float, *, signed: bool) -> str:
    """Prefix '−' (or '+' when ``signed``) unless the value rounds to zero as shown."""
    if rounded < 0:
        return MINUS + text
    return "+" + text if signed and rounded > 0 else text


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def explain_change(
    category_changes: pd.DataFrame,
    *,
    category_col: str = "category",
    current_col: str = "revenue",
    previous_col: str = "previous",
) -> pd.DataFrame:
    """category, revenue, previous, change, change_pct, share_pct (of the total change), largest |change| first."""
    require_columns(category_changes.columns, [category_col, current_col, previous_col], what="The category table")
    frame = category_changes[[category_col, current_col, previous_col]].copy()
    frame.columns = pd.Index(["category", "revenue", "previous"])
    frame["change"] = frame["revenue"] - frame["previous"]
    base = frame["previous"].where(frame["previous"] != 0)
    frame["change_pct"] = frame["change"] / base.abs() * 100
    total = frame["change"].sum()
    frame["share_pct"] = frame["change"] / total * 100 if total != 0 else float("nan")
    order = frame["change"].abs().sort_values(ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def write_insights(
    kpis: pd.DataFrame,
    *,
    category_changes: pd.DataFrame | None = None,
    period: Period | None = None,
    store_name: str | None = None,
    currency: str = "USD",
    flat_pct: float = 0.5,
) -> list[str]:
    """Up to five sentences: revenue against the previous period, the category that explains it (from
    ``category_changes``: category, revenue, previous), last year, orders and order value, margin, returns.

    A period without revenue gives one sentence saying so; a missing comparison is said, never guessed.
    """
    require_columns(kpis.columns, ["kpi", *_Kpi.FIELDS], what="The KPI table")
    rows = {str(row["kpi"]): _Kpi.from_row(row) for row in kpis.to_dict("records")}
    words = _Words(period, store_name, currency, flat_pct)
    revenue = rows.get("revenue", _Kpi.unknown())
    if _missing(revenue.value):
        where = f" at {store_name}" if store_name else ""
        return [f"No sales data for {words.label}{where}."]
    sentences = [
        _headline(revenue, words),
        _category_sentence(revenue, category_changes, words),
        _last_year(revenue, words),
        _orders_sentence(rows.get("orders", _Kpi.unknown()), rows.get("aov", _Kpi.unknown()), words),
        _points_sentence(rows.get("margin_pct", _Kpi.unknown()), "Gross margin was {} of revenue", words),
        _returns_sentence(rows.get("return_rate", _Kpi.unknown()), words),
    ]
    return [s for s in sentences if s][:MAX_SENTENCES]


@dataclass(frozen=True)
class _Kpi:
    """One row of the KPI table, as floats."""

    FIELDS: ClassVar[tuple[str, ...]] = ("value", "previous", "change_pct", "last_year", "change_pct_ly")
    value: float
    previous: float
    change_pct: float
    last_year: float
    change_pct_ly: float
    approximate: bool = False

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> _Kpi:
        value, previous, change, last_year, change_ly = (float(row[name]) for name in cls.FIELDS)
        return cls(value, previous, change, last_year, change_ly, approximate=bool(row.get("approximate", False)))

    @classmethod
    def unknown(cls) -> _Kpi:
        nan = float("nan")
        return cls(nan, nan, nan, nan, nan)


class _Words:
    """The period's phrases and the formatting options, for the sentence builders."""

    def __init__(self, period: Period | None, store_name: str | None, currency: str, flat_pct: float) -> None:
        noun = period.noun if period is not None else "period"
        self.label = period.label if period is not None else "this period"
        self.previous = f"the previous {noun}"
        self.last_year = f"the same {noun} last year"
        self.store_name = store_name
        self.currency = currency
        self.flat_pct = flat_pct

    def money(self, value: float, *, signed: bool = False) -> str:
        return format_money(value, self.currency, signed=signed)

    def subject(self, noun: str) -> str:
        return f"At {self.store_name}, {noun.lower()}" if self.store_name else noun

    def is_flat(self, pct: float) -> bool:
        return abs(pct) < self.flat_pct

    def movement(self, pct: float) -> str:
        """'was flat', 'rose 4.0%', 'fell 12.3%'."""
        return "was flat" if self.is_flat(pct) else f"{'rose' if pct > 0 else 'fell'} {format_pct(abs(pct))}"


def _headline(revenue: _Kpi, words: _Words) -> str:
    value, previous = words.money(revenue.value), words.money(revenue.previous)
    note = "approximate, from weekly totals" if revenue.approximate else ""
    subject = words.subject("Revenue")
    when = f"in {words.label} ({note})" if note else f"in {words.label}"
    if _missing(revenue.previous):
        return f"{subject} was {value} {when}; there is no data for {words.previous} to compare with."
    if _missing(revenue.change_pct):  # the base is zero
        return f"{subject} was {value} {when}, against {previous} {words.previous}."
    amounts = f"{value} vs {previous}; {note}" if note else f"{value} vs {previous}"
    return f"{subject} {words.movement(revenue.change_pct)} against {words.previous} ({amounts})."


def _category_sentence(revenue: _Kpi, category_changes: pd.DataFrame | None, words: _Words) -> str | None:
    """The category whose change goes the way revenue went and weighs most; None when nothing explains."""
    change = revenue.value - revenue.previous
    if category_changes is None or category_changes.empty or _missing(change) or change == 0:
        return None
    if not _missing(revenue.change_pct) and words.is_flat(revenue.change_pct):
        return None
    table = explain_change(category_changes)
    same_way = table[table["change"] * change > 0]
    if same_way.empty or table["change"].sum() * change <= 0:
        return None
    driver = same_way.iloc[0]
    direction = "drop" if change < 0 else "rise"
    pct = "" if _missing(driver["change_pct"]) else f"{format_pct(float(driver['change_pct']), signed=True)}, "
    detail = f"{driver['category']} ({pct}{words.money(float(driver['change']), signed=True)})"
    share = float(driver["share_pct"])
    if share >= 50:
        return f"{detail} explains most of the {direction}."
    return f"The largest part of the {direction} is {detail}, {format_pct(share, decimals=0)} of it."


def _last_year(revenue: _Kpi, words: _Words) -> str | None:
    if _missing(revenue.last_year) or _missing(revenue.change_pct_ly):
        return None
    amounts = f"{words.money(revenue.value)} vs {words.money(revenue.last_year)}"
    return f"Against {words.last_year}, revenue {words.movement(revenue.change_pct_ly)} ({amounts})."


def _orders_sentence(orders: _Kpi, aov: _Kpi, words: _Words) -> str | None:
    if _missing(orders.value) or _missing(orders.change_pct):
        return None
    count = format_count(orders.value)
    if words.is_flat(orders.change_pct):
        first = f"Orders were flat at {count}"
    else:
        first = f"Orders {words.movement(orders.change_pct)} to {count}"
    if _missing(aov.value) or _missing(aov.change_pct):
        return f"{first}."
    amount = words.money(aov.value)
    moved = f"held at {amount}" if words.is_flat(aov.change_pct) else f"{words.movement(aov.change_pct)} to {amount}"
    return f"{first}; the average order value {moved}."


def _points_sentence(row: _Kpi, lead: str, words: _Words) -> str | None:
    """'<lead with 32.1%>, down 1.2 points from 33.3%.' for a percent KPI."""
    if _missing(row.value):
        return None
    text = lead.format(format_pct(row.value))
    if _missing(row.previous):
        return f"{text}."
    points = round(row.value - row.previous, 1)
    if points == 0:
        return f"{text}, unchanged from {words.previous}."
    return f"{text}, {'up' if points > 0 else 'down'} {abs(points):.1f} points from {format_pct(row.previous)}."


def _returns_sentence(row: _Kpi, words: _Words) -> str | None:
    if row.value == 0 and (_missing(row.previous) or row.previous == 0):
        return None  # no returns, nothing to say
    return _points_sentence(row, "Returns were {} of gross sales", words)
