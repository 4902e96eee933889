"""The input of a forecast: one regular daily or weekly series, or an error saying why it is not one.

Documented handling (never a silent wrong number):
- Dates out of order are sorted; duplicated dates, NaN/infinite values and dates with a time of day are errors that
  name the offending dates.
- Gaps: under ``gaps="auto"`` missing days of a daily series are filled with 0 (a day without a row is a day
  without sales) and missing weeks of a weekly series are an error (a missing week is more often a broken export
  than a closed store); ``gaps="zero"`` fills both, ``gaps="error"`` refuses both. Filled dates are reported.
  Filling more than half the calendar is refused whatever the policy (a weekly series read as daily, say).
- Negative values are allowed: revenue net of returns can dip below zero. The models work on the raw scale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from report_lib.errors import ConfigError, DataValidationError, InsufficientDataError, require_columns

log = logging.getLogger(__name__)

GapPolicy = Literal["auto", "zero", "error"]
DAILY_SEASON = 7
WEEKLY_SEASON = 52
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
SHOWN_DATES = 5


@dataclass(frozen=True, eq=False)
class PreparedSeries:
    """A validated series on a regular grid: values as float64, one date per value, nothing missing."""

    observed: np.ndarray
    dates: pd.DatetimeIndex
    freq: str  # "D" or "W-FRI" (weekly, anchored on the weekday of the data)
    season: int  # 7 for daily, 52 for weekly
    filled: tuple[pd.Timestamp, ...]  # dates that were absent and filled with 0

    @property
    def unit(self) -> str:
        return "days" if self.freq == "D" else "weeks"


def series_from_frame(df: pd.DataFrame, *, date_col: str = "day", value_col: str = "revenue") -> pd.Series:
    """The ``value_col`` column of a long frame as a Series indexed by ``date_col`` (one series, no grouping)."""
    require_columns(df.columns, [date_col, value_col], what="Forecast input")
    try:
        dates = pd.to_datetime(df[date_col])
    except (ValueError, TypeError) as exc:
        raise DataValidationError(
            f"Column {date_col!r} holds values that are not dates ({exc}); expected dates such as 2024-01-31. "
            "Parse them first (pd.to_datetime with the right format) or pass the right date_col.",
            details={"column": date_col},
        ) from exc
    return pd.Series(df[value_col].to_numpy(), index=pd.DatetimeIndex(dates), name=value_col)


def prepare_series(series: pd.Series, *, freq: str | None = None, gaps: GapPolicy = "auto") -> PreparedSeries:
    """Validate ``series`` (indexed by dates) and put it on a regular daily or weekly grid."""
    if gaps not in ("auto", "zero", "error"):
        raise ConfigError(f"gaps is {gaps!r}; expected 'auto', 'zero' or 'error'")
    index = _date_index(series)
    values = _float_values(series)
    _reject_missing_values(index, values)
    _reject_duplicates(index)
    order = np.argsort(index.to_numpy(), kind="stable")
    if not (order == np.arange(len(order))).all():
        log.info("forecast input was not sorted by date; sorted it")
    index, values = index[order], values[order]
    if len(index) < 2:
        raise InsufficientDataError(
            f"The series has {len(index)} value(s); a forecast needs a history of many days or weeks.",
            details={"points": len(index)},
        )
    resolved = _resolve_freq(index, freq)
    return _regularise(index, values, resolved, gaps)


def _date_index(series: pd.Series) -> pd.DatetimeIndex:
    if not isinstance(series, pd.Series):
        raise DataValidationError(
            f"Expected a pandas Series indexed by dates, got {type(series).__name__}; "
            "for a long DataFrame use forecast_frame(df, date_col=..., value_col=...)."
        )
    if not isinstance(series.index, pd.DatetimeIndex):
        raise DataValidationError(
            f"The series is indexed by {type(series.index).__name__}; expected a DatetimeIndex. "
            "Set the dates as the index (series.index = pd.to_datetime(...)) or use forecast_frame."
        )
    index = series.index.tz_localize(None) if series.index.tz is not None else series.index
    off_midnight = index[index != index.normalize()]
    if len(off_midnight):
        raise DataValidationError(
            f"{len(off_midnight)} dates carry a time of day (e.g. {_show(off_midnight)}); expected whole days "
            "(one value per day or per week). Aggregate to days first.",
            details={"dates": list(off_midnight)},
        )
    return pd.DatetimeIndex(index)


def _float_values(series: pd.Series) -> np.ndarray:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        raise DataValidationError(
            f"The series {series.name!r} has dtype {dtype}; expected numbers (sales, orders...). "
            "Convert it with pd.to_numeric first.",
            details={"dtype": str(dtype)},
        )
    return np.asarray(series.to_numpy(dtype="float64", na_value=np.nan), dtype="float64").copy()


def _reject_missing_values(index: pd.DatetimeIndex, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        dates = index[bad]
        raise DataValidationError(
            f"{int(bad.sum())} values are NaN or infinite, on {_show(dates)}; expected a number for every date. "
            "Fill them (0 for a closed day) or drop those rows before forecasting.",
            details={"dates": list(dates)},
        )


def _reject_duplicates(index: pd.DatetimeIndex) -> None:
    duplicated = index[index.duplicated()].unique()
    if len(duplicated):
        raise DataValidationError(
            f"{len(duplicated)} dates appear more than once ({_show(duplicated)}); expected one value per date. "
            "Sum or de-duplicate the rows per date before forecasting.",
            details={"dates": list(duplicated)},
        )


def _resolve_freq(index: pd.DatetimeIndex, freq: str | None) -> str:
    weekday = WEEKDAYS[index[0].day_of_week]
    if freq is not None:
        upper = freq.upper()
        if upper == "D" or (upper.startswith("W-") and upper[2:] in WEEKDAYS):
            return upper
        if upper == "W":
            return f"W-{weekday}"
        raise ConfigError(f"freq is {freq!r}; expected 'D' (daily) or 'W' / 'W-FRI' (weekly)")
    steps = np.diff(index.to_numpy()).astype("timedelta64[D]").astype(np.int64)
    smallest = int(steps.min())
    if smallest == 1:
        return "D"
    if smallest == 7:  # dates off this weekday are named by _regularise
        return f"W-{weekday}"
    raise DataValidationError(
        f"Consecutive dates are at least {smallest} days apart; expected a daily or weekly series. "
        "Aggregate to days or weeks, or pass freq='D' / freq='W'.",
        details={"smallest_step_days": smallest},
    )


def _regularise(index: pd.DatetimeIndex, values: np.ndarray, freq: str, gaps: GapPolicy) -> PreparedSeries:
    grid = pd.date_range(index[0], index[-1], freq=freq)
    off_grid = index.difference(grid)
    if len(off_grid):
        raise DataValidationError(
            f"{len(off_grid)} dates are not on the {freq} grid (e.g. {_show(off_grid)}); a weekly series needs "
            "every date on the same weekday. Re-aggregate the weeks to one weekday.",
            details={"dates": list(off_grid)},
        )
    missing = grid.difference(index)
    fill = gaps == "zero" or (gaps == "auto" and freq == "D")
    unit = "days" if freq == "D" else "weeks"
    if fill and len(missing) > len(grid) // 2:
        raise DataValidationError(
            f"{len(missing)} of {len(grid)} {unit} between {index[0]:%Y-%m-%d} and {index[-1]:%Y-%m-%d} are "
            f"missing; filling more than half the calendar with 0 would invent the series. Check freq (a weekly "
            "series read as daily?), or add the closed periods as rows with 0.",
            details={"missing": len(missing), "periods": len(grid)},
        )
    if len(missing) and not fill:
        raise DataValidationError(
            f"{len(missing)} {unit} are missing between {index[0]:%Y-%m-%d} and {index[-1]:%Y-%m-%d} "
            f"({_show(missing)}); expected one value per {unit[:-1]}. Add the missing rows, or pass gaps='zero' "
            "to treat them as zero sales.",
            details={"dates": list(missing)},
        )
    regular = pd.Series(values, index=index).reindex(grid, fill_value=0.0)
    if len(missing):
        log.info("filled %d missing %s with 0", len(missing), unit)
    season = DAILY_SEASON if freq == "D" else WEEKLY_SEASON
    dates = pd.DatetimeIndex(regular.index, freq=freq)
    return PreparedSeries(regular.to_numpy(dtype="float64"), dates, freq, season, tuple(missing))


def _show(dates: pd.DatetimeIndex) -> str:
    shown = ", ".join(f"{d:%Y-%m-%d}" for d in dates[:SHOWN_DATES])
    return shown + (f" and {len(dates) - SHOWN_DATES} more" if len(dates) > SHOWN_DATES else "")
