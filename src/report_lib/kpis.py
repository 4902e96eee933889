"""Store KPIs for a period, against the previous period and the same period last year.

Input is the long-format ``daily_metrics`` frame of ``load_daily_metrics`` (one row per store and day, or per store
and week for aggregate-only stores). Definitions, one place:

- revenue is net of discounts and returns; returns is the positive value of returned goods;
- gross sales = revenue + returns; return rate = returns / gross sales, in percent (above 100 % when a period's
  returns exceed its sales);
- average order value = revenue / orders; units per order = units / orders (NaN when orders is 0);
- gross margin = sum of margin (a row without margin but with cost uses revenue - cost); margin % = margin / revenue,
  in percent, NaN when revenue is 0 or negative;
- change = value - base; change_pct = change / |base| in percent, NaN when the base is 0 or unknown. For percent
  KPIs ``change`` is in percentage points.

Handling of awkward data (documented, never silent):

- a period total is NaN ("unknown") when the period has no rows, or when any of its rows lacks the metric: one day
  without unit costs makes the period's margin unknown rather than a partial sum;
- days without a row count as zero sales (stores are closed some days);
- weekly rows (grain 'week', dated by the week's last day) count in a period when their last day falls in it. Their
  other six days may lie outside the period, so such totals are flagged ``approximate``; a period shorter than a
  week on weekly data is very approximate (a whole week lands on one day, or nothing does);
- customers summed over several days (or stores) count a returning customer once per day: flagged approximate unless
  they come from ``warehouse.loaders.kpis`` which counts distinct customers over the period in SQL.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from report_lib.errors import DataValidationError, require_columns
from report_lib.periods import Period

log = logging.getLogger(__name__)

METRICS = ("revenue", "orders", "units", "customers", "cost", "margin", "returns", "return_units")
NON_NEGATIVE = ("orders", "customers", "returns", "return_units")  # cost and margin go negative on return days
GRAINS = ("day", "week")
COMPARISONS = ("current", "previous", "last_year")

# kpi, label, unit ('money' | 'count' | 'ratio' | 'percent')
KPIS: tuple[tuple[str, str, str], ...] = (
    ("revenue", "Revenue", "money"),
    ("orders", "Orders", "count"),
    ("units", "Units", "count"),
    ("customers", "Customers", "count"),
    ("aov", "Average order value", "money"),
    ("units_per_order", "Units per order", "ratio"),
    ("gross_margin", "Gross margin", "money"),
    ("margin_pct", "Margin %", "percent"),
    ("return_rate", "Return rate", "percent"),
)
KPI_COLUMNS = (
    "kpi",
    "label",
    "unit",
    "value",
    "previous",
    "change",
    "change_pct",
    "last_year",
    "change_ly",
    "change_pct_ly",
    "approximate",
)


def validate_daily(
    daily: pd.DataFrame,
    *,
    metrics: Sequence[str] = METRICS,
    store_col: str = "store_code",
    day_col: str = "day",
    grain_col: str = "grain",
) -> pd.DataFrame:
    """A checked, sorted copy of a daily-metrics frame; a frame without ``grain_col`` is taken as daily grain.

    Raises:
        DataValidationError: missing columns, unparseable days or numbers, unknown grains, duplicated
            (store, day) rows, negative orders, customers or returns, or weekly rows overlapping daily rows.
    """
    require_columns(daily.columns, [store_col, day_col, *metrics], what="The daily metrics frame")
    frame = daily.copy()
    if grain_col not in frame.columns:
        frame[grain_col] = "day"
    frame[day_col] = _as_days(frame[day_col], day_col)
    for name in metrics:
        frame[name] = _as_numbers(frame[name], name)
    if "margin" in metrics and "cost" in metrics and "revenue" in metrics:
        frame["margin"] = frame["margin"].fillna(frame["revenue"] - frame["cost"])
    _check_grains(frame, grain_col)
    _check_duplicates(frame, store_col, day_col)
    _check_non_negative(frame, [m for m in metrics if m in NON_NEGATIVE], day_col)
    _check_overlaps(frame, store_col, day_col, grain_col)
    return frame.sort_values([store_col, day_col], kind="stable").reset_index(drop=True)


def _as_days(values: pd.Series, name: str) -> pd.Series:
    try:
        days = pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise DataValidationError(
            f"Column {name!r} has values that are not dates ({exc}); expected dates such as 2024-03-05.",
            details={"column": name},
        ) from exc
    if days.isna().any():
        raise DataValidationError(
            f"Column {name!r} has {int(days.isna().sum())} empty dates; every row needs its day. Drop those rows.",
            details={"column": name},
        )
    if days.dt.tz is not None:  # store-local wall clock: keep the local calendar day
        days = days.dt.tz_localize(None)
    return days.dt.normalize()


def _as_numbers(values: pd.Series, name: str) -> pd.Series:
    try:
        numbers = values if values.dtype == "float64" else pd.to_numeric(values, errors="raise").astype("float64")
    except (ValueError, TypeError) as exc:
        raise DataValidationError(
            f"Column {name!r} has values that are not numbers ({exc}); expected numbers, empty where unknown.",
            details={"column": name},
        ) from exc
    infinite = int(np.isinf(numbers.to_numpy()).sum())
    if infinite:
        raise DataValidationError(
            f"Column {name!r} has {infinite} infinite values; expected finite numbers (empty where unknown). "
            "Check the import for a division by zero.",
            details={"column": name, "infinite_rows": infinite},
        )
    return numbers


def _check_grains(frame: pd.DataFrame, grain_col: str) -> None:
    unknown = sorted(set(map(str, frame[grain_col].unique())) - set(GRAINS))
    if unknown:
        raise DataValidationError(
            f"Column {grain_col!r} has values {unknown}; expected only 'day' or 'week' (weekly rows dated by "
            "the week's last day).",
            details={"column": grain_col, "values": unknown},
        )


def _check_duplicates(frame: pd.DataFrame, store_col: str, day_col: str) -> None:
    duplicated = frame[frame.duplicated([store_col, day_col], keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        raise DataValidationError(
            f"{len(duplicated)} rows share a (store, day), e.g. store {first[store_col]!r} on "
            f"{first[day_col]:%Y-%m-%d}; expected one row per store and day. Aggregate or de-duplicate them first.",
            details={"duplicated_rows": len(duplicated)},
        )


def _check_non_negative(frame: pd.DataFrame, columns: Sequence[str], day_col: str) -> None:
    negative = frame[list(columns)] < 0
    for name in negative.columns[negative.any().to_numpy()]:
        rows = frame[negative[name]]
        raise DataValidationError(
            f"Column {name!r} has {len(rows)} negative values (first on "
            f"{rows[day_col].iloc[0]:%Y-%m-%d}: {rows[name].iloc[0]}); expected values >= 0 "
            "(returns are a positive amount; revenue, units, cost and margin may be negative).",
            details={"column": name, "negative_rows": len(rows)},
        )


def _check_overlaps(frame: pd.DataFrame, store_col: str, day_col: str, grain_col: str) -> None:
    """A weekly row covers its last day and the six before; a daily row inside that span would count twice."""
    is_week = (frame[grain_col] == "week").to_numpy()
    if not is_week.any() or is_week.all():
        return
    weekly = frame.loc[is_week, [store_col, day_col]]
    spans = weekly.loc[weekly.index.repeat(7)].copy()
    spans["covered"] = spans[day_col] - pd.to_timedelta(np.tile(np.arange(7), len(weekly)), unit="D")
    daily = frame.loc[~is_week, [store_col, day_col]]
    clash = spans.merge(daily, left_on=[store_col, "covered"], right_on=[store_col, day_col], suffixes=("", "_d"))
    clash = clash.sort_values([store_col, "covered"])
    if not clash.empty:
        row = clash.iloc[0]
        raise DataValidationError(
            f"Store {row[store_col]!r} has a daily row on {row['covered']:%Y-%m-%d} inside the week ending "
            f"{row[day_col]:%Y-%m-%d}, which also has a weekly row; expected each day covered once. "
            "Delete the weekly rows where daily rows exist.",
            details={"overlapping_rows": len(clash)},
        )


def period_totals(
    daily: pd.DataFrame,
    period: Period,
    *,
    day_col: str = "day",
    grain_col: str = "grain",
) -> pd.Series:
    """Sums of every metric over the period's rows of a validated frame, with coverage facts.

    The Series holds start, end, label, the eight metrics, ``rows`` (rows counted), ``weekly_rows``,
    ``approximate`` (weekly rows that do not tile the period) and ``customers_exact`` (only a single row is exact).
    """
    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    days = daily[day_col].to_numpy()
    inside = (days >= start.to_datetime64()) & (days <= end.to_datetime64())
    values = daily[list(METRICS)].to_numpy(dtype="float64")[inside]
    weekly_days = days[inside & (daily[grain_col] == "week").to_numpy()]
    approximate = bool(len(weekly_days)) and weekly_rows_are_approximate(
        pd.Timestamp(weekly_days.min()).date(),
        pd.Timestamp(weekly_days.max()).date(),
        start=period.start,
        end=period.end,
    )
    # a total is unknown (NaN) when the period has no rows or any row lacks the metric: never a partial sum
    sums = values.sum(axis=0) if len(values) else np.full(len(METRICS), np.nan)
    totals: dict[str, object] = {"start": start, "end": end, "label": period.label}
    totals.update({name: float(total) for name, total in zip(METRICS, sums, strict=True)})
    totals.update(
        rows=len(values),
        weekly_rows=len(weekly_days),
        approximate=approximate,
        customers_exact=len(values) == 1,
    )
    return pd.Series(totals, dtype=object)


def weekly_rows_are_approximate(
    first_week_end: dt.date, last_week_end: dt.date, *, start: dt.date, end: dt.date
) -> bool:
    """Whether weekly rows ending on these days fail to tile the period exactly (a week starts before the period,
    or the last counted week ends before the period does)."""
    return first_week_end - dt.timedelta(days=6) < start or last_week_end < end


def comparison_totals(
    daily: pd.DataFrame,
    period: Period,
    *,
    store_col: str = "store_code",
    day_col: str = "day",
    grain_col: str = "grain",
) -> pd.DataFrame:
    """Period totals for the period, the previous period and the same period last year (index: COMPARISONS).

    Several stores in ``daily`` are added together (a chain total); pass one store's rows for a store report.
    """
    frame = validate_daily(daily, store_col=store_col, day_col=day_col, grain_col=grain_col)
    rows = {
        name: period_totals(frame, p, day_col=day_col, grain_col=grain_col) for name, p in period.comparisons().items()
    }
    return pd.DataFrame(rows).T.infer_objects()


def compute_kpis(
    daily: pd.DataFrame,
    period: Period,
    *,
    store_col: str = "store_code",
    day_col: str = "day",
    grain_col: str = "grain",
) -> pd.DataFrame:
    """The KPI table of a period from daily (or weekly) metrics alone; see the module docstring for definitions.

    Returns one row per KPI with columns KPI_COLUMNS: value, previous and last_year values, absolute and % changes
    (NaN, not 0, where a comparison has no data) and ``approximate``. Load rows from ``period.load_range()``
    so the comparison periods are covered.
    """
    totals = comparison_totals(daily, period, store_col=store_col, day_col=day_col, grain_col=grain_col)
    return kpis_from_totals(totals)


def kpis_from_totals(totals: pd.DataFrame) -> pd.DataFrame:
    """The KPI table from period totals (``comparison_totals`` or ``warehouse.loaders.kpis.load_comparison_totals``).

    ``totals`` needs a 'current' row; 'previous' and 'last_year' are optional (their columns are then NaN).
    """
    require_columns(totals.index, ["current"], what="The totals' index")
    require_columns(totals.columns, [*METRICS, "rows", "approximate", "customers_exact"], what="The totals frame")
    rows = {name: _row(totals, name) for name in COMPARISONS if name in totals.index}
    values = {name: _kpi_values(rows[name]) if name in rows else {} for name in COMPARISONS}
    with_data = [row for row in rows.values() if int(row["rows"]) > 0]
    any_approximate = any(bool(row["approximate"]) for row in with_data)
    customers_approximate = not all(bool(row["customers_exact"]) for row in with_data)
    records = [
        _kpi_record(kpi, label, unit, [values[name].get(kpi, np.nan) for name in COMPARISONS])
        | {"approximate": any_approximate or (kpi == "customers" and customers_approximate)}
        for kpi, label, unit in KPIS
    ]
    return pd.DataFrame.from_records(records, columns=list(KPI_COLUMNS))


def _row(totals: pd.DataFrame, name: str) -> pd.Series:
    row = totals.loc[name]
    if not isinstance(row, pd.Series):
        raise DataValidationError(
            f"The totals frame has several {name!r} rows; expected one row per comparison ({', '.join(COMPARISONS)})."
        )
    return row


def _kpi_record(kpi: str, label: str, unit: str, values: list[float]) -> dict[str, object]:
    value, previous, last_year = values
    return {
        "kpi": kpi,
        "label": label,
        "unit": unit,
        "value": value,
        "previous": previous,
        "change": value - previous,
        "change_pct": change_pct(value, previous),
        "last_year": last_year,
        "change_ly": value - last_year,
        "change_pct_ly": change_pct(value, last_year),
    }


def _kpi_values(totals: pd.Series) -> dict[str, float]:
    revenue, orders, units = (float(totals[name]) for name in ("revenue", "orders", "units"))
    margin, returns = float(totals["margin"]), float(totals["returns"])
    return {
        "revenue": revenue,
        "orders": orders,
        "units": units,
        "customers": float(totals["customers"]),
        "aov": _ratio(revenue, orders),
        "units_per_order": _ratio(units, orders),
        "gross_margin": margin,
        "margin_pct": 100 * _ratio(margin, revenue, positive_base=True),
        "return_rate": 100 * _ratio(returns, revenue + returns, positive_base=True),
    }


def _ratio(numerator: float, denominator: float, *, positive_base: bool = False) -> float:
    if np.isnan(numerator) or np.isnan(denominator) or denominator == 0 or (positive_base and denominator < 0):
        return float("nan")
    return numerator / denominator


def change_pct(value: float, base: float) -> float:
    """(value - base) / |base| in percent; NaN when either is unknown or the base is 0."""
    if np.isnan(value) or np.isnan(base) or base == 0:
        return float("nan")
    return (value - base) / abs(base) * 100
