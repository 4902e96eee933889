"""Trends of a daily-metrics frame: resampling, moving averages, growth rates, STL decomposition, weekday profile.

Days in ``daily_metrics`` are already the store's local calendar days (the warehouse keeps local wall-clock time),
so resampling "in the store's timezone" is plain calendar resampling of ``day``: weeks run Monday to Sunday and are
labelled by their Sunday (like weekly rows, dated by their last day), months are labelled by their first day.

Documented handling:
- daily grain: a day without a row inside the data's range counts as zero sales (the store was closed); a row whose
  value is unknown (NaN) stays NaN, and so does any week or month containing it;
- weekly grain (aggregate-only stores): weekly rows are never spread or zero-filled into days; asking for days
  raises InsufficientDataError. ``freq=None`` picks the finest grain the data has;
- weeks or months at either end that the data covers only partly are dropped (``drop_partial=True``), so a trend
  does not end on a false fall;
- several stores in the frame are added together.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from report_lib.errors import ConfigError, DataValidationError, InsufficientDataError
from report_lib.kpis import validate_daily

log = logging.getLogger(__name__)

Freq = Literal["D", "W", "M"]
RULES: dict[str, str] = {"D": "D", "W": "W-SUN", "M": "MS"}
YEAR_LAGS = {"D": 364, "W": 52, "M": 12}  # 364 days: the same weekday a year earlier
SEASONAL_PERIODS = {"D": 7, "W": 52, "M": 12}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def resample_metric(
    daily: pd.DataFrame,
    *,
    freq: Freq | None = None,
    metric: str = "revenue",
    drop_partial: bool = True,
    store_col: str = "store_code",
    day_col: str = "day",
    grain_col: str = "grain",
) -> pd.Series:
    """One metric as a regular series by day ('D'), week ('W', Mon-Sun) or month ('M'); see the module docstring.

    Raises:
        InsufficientDataError: days were asked of weekly rows.
        DataValidationError: the frame is malformed (see ``report_lib.kpis.validate_daily``).
    """
    if freq is not None and freq not in RULES:
        raise ConfigError(f"freq is {freq!r}; expected 'D' (day), 'W' (week), 'M' (month) or None (finest).")
    frame = validate_daily(daily, metrics=[metric], store_col=store_col, day_col=day_col, grain_col=grain_col)
    weekly = bool((frame[grain_col] == "week").any())
    freq = freq or ("W" if weekly else "D")
    if frame.empty:
        log.info("no rows: the %s series of %s is empty", freq, metric)
        return pd.Series([], index=pd.DatetimeIndex([], name=day_col, freq=RULES[freq]), name=metric, dtype=float)
    if weekly and freq == "D":
        raise InsufficientDataError(
            f"The data has weekly rows (aggregate totals), so {metric} cannot be shown by day; expected daily rows. "
            "Use freq='W' or 'M' (or freq=None for the finest grain available).",
            details={"grain": "week"},
        )
    by_day = _strict_group_sum(frame, day_col, metric)
    if weekly and freq == "W" and (frame[grain_col] == "week").all():
        return _regular_weeks(by_day, metric)
    first = by_day.index.min() - pd.Timedelta(days=6 if weekly else 0)
    series = by_day.asfreq("D", fill_value=0.0) if not weekly else by_day
    if freq == "D":
        return series.rename(metric).rename_axis(day_col)
    resampled = _strict_resample(series, RULES[freq])
    if drop_partial:
        resampled = _complete_bins(resampled, freq, first, by_day.index.max())
    return resampled.rename(metric).rename_axis(day_col)


def _strict_group_sum(frame: pd.DataFrame, day_col: str, metric: str) -> pd.Series:
    """Per-day sum over stores, NaN when any store's value that day is unknown."""
    sums = frame.groupby(day_col)[metric].sum()
    unknown = frame[metric].isna().groupby(frame[day_col]).any()
    return sums.mask(unknown)


def _strict_resample(series: pd.Series, rule: str) -> pd.Series:
    sums = series.resample(rule).sum()
    unknown = series.isna().resample(rule).max().astype(bool)
    return sums.mask(unknown)


def _complete_bins(series: pd.Series, freq: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.Series:
    index = _datetime_index(series)
    starts = index - pd.Timedelta(days=6) if freq == "W" else index
    ends = index if freq == "W" else index + pd.offsets.MonthEnd(0)
    kept = np.flatnonzero((starts >= first) & (ends <= last))
    if len(kept) < len(series):
        log.debug("dropped %d partial %s bins at the ends of the data", len(series) - len(kept), freq)
    return series.iloc[kept[0] : kept[-1] + 1] if len(kept) else series.iloc[0:0]  # slices keep the index freq


def _datetime_index(series: pd.Series) -> pd.DatetimeIndex:
    if not isinstance(series.index, pd.DatetimeIndex):
        raise DataValidationError(
            f"The series needs a DatetimeIndex (as resample_metric returns); it has {type(series.index).__name__}."
        )
    return series.index


def _regular_weeks(by_day: pd.Series, metric: str) -> pd.Series:
    """Weekly rows on their own week-end days; a missing week (same weekday, 7 days on) counts as zero sales."""
    weekday = by_day.index[0].day_name()[:3].upper()
    index = pd.date_range(by_day.index.min(), by_day.index.max(), freq=f"W-{weekday}", name=by_day.index.name)
    stray = by_day.index.difference(index)
    if len(stray):
        raise DataValidationError(
            f"Weekly rows should all end on a {weekday.title()} (7 days apart), but {len(stray)} do not, e.g. "
            f"{stray[0]:%Y-%m-%d}; expected one row per week dated by the week's last day. Fix the import.",
            details={"stray_days": len(stray)},
        )
    return by_day.reindex(index, fill_value=0.0).rename(metric)


def moving_average(series: pd.Series, window: int, *, min_periods: int | None = None) -> pd.Series:
    """Trailing mean over ``window`` points (NaN until ``min_periods``, by default a full window, are there)."""
    if window < 1:
        raise ConfigError(f"The moving-average window is {window}; expected a whole number of points >= 1.")
    averaged = series.rolling(window, min_periods=window if min_periods is None else min_periods).mean()
    return averaged.rename(f"{series.name}_ma{window}" if series.name is not None else f"ma{window}")


def growth_rates(series: pd.Series, *, year_lag: int | None = None) -> pd.DataFrame:
    """value, pop_pct (against the point before) and yoy_pct (against a year earlier), both in percent.

    The series must be regular (as ``resample_metric`` returns it). A year is 364 days, 52 weeks or 12 months,
    unless ``year_lag`` says how many points. Percentages are NaN when the base is 0 or unknown, and use |base|.
    """
    lag = YEAR_LAGS[_freq_key(series)] if year_lag is None else year_lag
    return pd.DataFrame(
        {
            "value": series,
            "pop_pct": _pct_change(series, series.shift(1)),
            "yoy_pct": _pct_change(series, series.shift(lag)),
        },
        index=series.index,
    )


def _pct_change(values: pd.Series, base: pd.Series) -> pd.Series:
    usable = base.where(base != 0)
    return (values - usable) / usable.abs() * 100


def _freq_key(series: pd.Series) -> str:
    index = _datetime_index(series)
    freq = index.freqstr if index.freq is not None else (pd.infer_freq(index) if len(index) >= 3 else None)
    key = (freq or "?")[0]
    if key not in YEAR_LAGS:
        raise DataValidationError(
            f"The series' frequency is {freq!r}; expected daily, weekly or monthly points at regular steps. "
            "Resample it with resample_metric first, or pass year_lag=/period= explicitly.",
            details={"freq": freq},
        )
    return key


def decompose(series: pd.Series, *, period: int | None = None, robust: bool = True) -> pd.DataFrame:
    """STL decomposition: observed, trend, seasonal, resid. ``period`` defaults to 7 (days), 52 (weeks), 12 (months).

    Raises:
        InsufficientDataError: fewer than two full seasonal periods.
        DataValidationError: unknown (NaN) values, which STL cannot take.
    """
    period = SEASONAL_PERIODS[_freq_key(series)] if period is None else period
    if period < 2:
        raise ConfigError(f"The seasonal period is {period}; expected at least 2 points.")
    if len(series) < 2 * period:
        raise InsufficientDataError(
            f"Seasonal decomposition needs two full periods ({2 * period} points of period {period}); "
            f"the series has {len(series)}. Use a longer history or skip the decomposition.",
            details={"points": len(series), "needed": 2 * period},
        )
    if series.isna().any():
        first = series.index[series.isna().to_numpy()][0]
        raise DataValidationError(
            f"The series has {int(series.isna().sum())} unknown values (first at {first}); STL needs every point. "
            "Fill them (e.g. interpolate) or shorten the series.",
            details={"unknown": int(series.isna().sum())},
        )
    from statsmodels.tsa.seasonal import STL  # imported here: statsmodels costs ~1.4 s to import

    fit = STL(series.astype("float64").to_numpy(), period=period, robust=robust).fit()
    return pd.DataFrame(
        {
            "observed": series.to_numpy(dtype="float64"),
            "trend": fit.trend,
            "seasonal": fit.seasonal,
            "resid": fit.resid,
        },
        index=series.index,
    )


def weekday_profile(
    daily: pd.DataFrame, *, metric: str = "revenue", store_col: str = "store_code", day_col: str = "day"
) -> pd.DataFrame:
    """Mean of the metric per weekday (index Mon..Sun) and how many days each mean is over.

    Closed days inside the range count as zero (as in ``resample_metric``); unknown days are left out.
    """
    series = resample_metric(daily, freq="D", metric=metric, store_col=store_col, day_col=day_col)
    grouped = series.groupby(_datetime_index(series).day_of_week)
    profile = pd.DataFrame({"mean": grouped.mean(), "days": grouped.count()}).reindex(range(7))
    profile["days"] = profile["days"].fillna(0).astype("int64")
    return profile.set_axis(pd.Index(WEEKDAYS, name="weekday"))


def best_and_worst_days(
    daily: pd.DataFrame,
    *,
    n: int = 3,
    metric: str = "revenue",
    store_col: str = "store_code",
    day_col: str = "day",
    grain_col: str = "grain",
) -> pd.DataFrame:
    """The n best and n worst recorded days: kind ('best'|'worst'), rank, day, weekday, value.

    Only days with a row and a known value compete (a closed day is not a "worst trading day"). Best and worst never
    share a day: with fewer than 2n days the worst list is shorter. Ties go to the earlier day.
    """
    if n < 1:
        raise ConfigError(f"n is {n}; expected at least 1 day.")
    frame = validate_daily(daily, metrics=[metric], store_col=store_col, day_col=day_col, grain_col=grain_col)
    if (frame[grain_col] == "week").any():
        raise InsufficientDataError(
            "Best and worst days need daily rows; this data has weekly totals. Use resample_metric(freq='W') "
            "to compare weeks instead.",
            details={"grain": "week"},
        )
    days = _strict_group_sum(frame, day_col, metric).dropna()
    ordered = days.reset_index().sort_values([metric, day_col], ascending=[False, True], kind="stable")
    best = ordered.head(n).assign(kind="best")
    rest = ordered.iloc[len(best) :]
    worst = rest.sort_values([metric, day_col], ascending=[True, True], kind="stable").head(n).assign(kind="worst")
    out = pd.concat([best, worst], ignore_index=True)
    out["rank"] = out.groupby("kind").cumcount().astype("int64") + 1
    out["weekday"] = [WEEKDAYS[day.day_of_week] for day in out[day_col]]
    return out.rename(columns={metric: "value"})[["kind", "rank", day_col, "weekday", "value"]]
