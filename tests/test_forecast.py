"""report_lib.forecast: input validation, the model helpers on hand-computed cases, forecasts of series with known
structure, the fallback to seasonal naive, interval coverage, and the Walmart backtest (when ../shared/data exists)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from report_lib.errors import ConfigError, DataValidationError, InsufficientDataError
from report_lib.forecast import (
    BACKTEST_COLUMNS,
    FORECAST_COLUMNS,
    ForecastResult,
    forecast_frame,
    forecast_series,
    forecast_stores,
    limit_blas_threads,
    summarise_backtests,
)
from report_lib.forecast_input import prepare_series
from report_lib.forecast_models import PointForecast, coverage, implausibility, mase, seasonal_naive

PATTERN = np.array([0.0, 5, 3, 8, 20, 30, -15])  # Monday .. Sunday around a level of 100


def daily(values: np.ndarray | list[float], start: str = "2024-01-01") -> pd.Series:
    """2024-01-01 is a Monday, so PATTERN[i % 7] is the weekday pattern."""
    return pd.Series(np.asarray(values, dtype="float64"), index=pd.date_range(start, periods=len(values), freq="D"))


def weekly(values: np.ndarray | list[float], start: str = "2010-02-05") -> pd.Series:
    """2010-02-05 is a Friday, like the Walmart weeks."""
    return pd.Series(np.asarray(values, dtype="float64"), index=pd.date_range(start, periods=len(values), freq="W-FRI"))


def pattern_with_noise(days: int, *, seed: int, sigma: float = 2.0) -> pd.Series:
    rng = np.random.default_rng(seed)
    return daily(100 + PATTERN[np.arange(days) % 7] + rng.normal(0, sigma, days))


def simulated_sarima(days: int, *, seed: int) -> pd.Series:
    """A SARIMA(1,1,1)(1,0,0)[7]-like process: AR(1) and weekly AR on the daily changes, MA(1) shocks."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0, 1, days + 50)
    changes = np.zeros(days + 50)
    for t in range(8, days + 50):
        changes[t] = (
            0.5 * changes[t - 1] + 0.4 * changes[t - 7] - 0.2 * changes[t - 8] + shocks[t] + 0.3 * shocks[t - 1]
        )
    return daily(500 + np.cumsum(changes)[50:])


# ---------------------------------------------------------------- input validation (no model is fitted)


def _with(values: list[float], dates: list[str]) -> pd.Series:
    return pd.Series(values, index=pd.DatetimeIndex(pd.to_datetime(dates)))


def _long(days: int) -> list[float]:
    return [float(v) for v in 100 + PATTERN[np.arange(days) % 7]]


BAD_INPUTS: list[tuple[str, Callable[[], pd.Series], dict[str, object], type[Exception], str]] = [
    (
        "duplicated date",
        lambda: _with([1.0, 2, 3], ["2024-01-01", "2024-01-02", "2024-01-02"]),
        {},
        DataValidationError,
        r"1 dates appear more than once \(2024-01-02\)",
    ),
    (
        "NaN value",
        lambda: _with([1.0, np.nan, 3], ["2024-01-01", "2024-01-02", "2024-01-03"]),
        {},
        DataValidationError,
        r"1 values are NaN or infinite, on 2024-01-02",
    ),
    (
        "infinite value",
        lambda: _with([1.0, np.inf, 3], ["2024-01-01", "2024-01-02", "2024-01-03"]),
        {},
        DataValidationError,
        "NaN or infinite, on 2024-01-02",
    ),
    (
        "text values",
        lambda: pd.Series(["a", "b"], index=pd.to_datetime(["2024-01-01", "2024-01-02"])),
        {},
        DataValidationError,
        "expected numbers",
    ),
    ("not dates", lambda: pd.Series([1.0, 2.0]), {}, DataValidationError, "expected a DatetimeIndex"),
    (
        "time of day",
        lambda: _with([1.0, 2], ["2024-01-01 10:00", "2024-01-02 10:00"]),
        {},
        DataValidationError,
        "carry a time of day",
    ),
    (
        "every third day",
        lambda: pd.Series([1.0, 2, 3], index=pd.date_range("2024-01-01", periods=3, freq="3D")),
        {},
        DataValidationError,
        "at least 3 days apart; expected a daily or weekly series",
    ),
    (
        "missing week",
        lambda: weekly(_long(120)).drop(pd.Timestamp("2010-03-05")),
        {},
        DataValidationError,
        r"1 weeks are missing .* \(2010-03-05\).*gaps='zero'",
    ),
    (
        "missing day refused",
        lambda: daily(_long(200)).drop(pd.Timestamp("2024-02-01")),
        {"gaps": "error"},
        DataValidationError,
        r"1 days are missing .*2024-02-01",
    ),
    (
        "weeks on two weekdays",
        lambda: _with([1.0, 2, 3], ["2024-01-05", "2024-01-12", "2024-01-20"]),
        {},
        DataValidationError,
        r"not on the W-FRI grid \(e.g. 2024-01-20\)",
    ),
    (
        "weekly read as daily",
        lambda: weekly(_long(150)),
        {"freq": "D"},
        DataValidationError,
        r"894 of 1044 days .* are missing; filling more than half",
    ),
    ("one value", lambda: daily([5.0]), {}, InsufficientDataError, "has 1 value"),
    (
        "too short for the default horizon",
        lambda: daily(_long(139)),
        {},
        InsufficientDataError,
        r"needs at least 140 days of history \(56 to fit on \+ 3 × 28 to test on\); the series has 139",
    ),
    (
        "weekly too short",
        lambda: weekly(_long(142)),
        {},
        InsufficientDataError,
        r"13 weeks ahead .* needs at least 143 weeks",
    ),
    ("horizon zero", lambda: daily(_long(200)), {"horizon": 0}, ConfigError, "horizon is 0"),
    ("no folds", lambda: daily(_long(200)), {"folds": 0}, ConfigError, "folds is 0"),
    ("min_folds zero", lambda: daily(_long(200)), {"min_folds": 0}, ConfigError, "min_folds is 0"),
    ("min_folds above folds", lambda: daily(_long(200)), {"min_folds": 4}, ConfigError, r"min_folds \(4\) is more"),
    (
        "too short even for the fewest folds",
        lambda: daily(_long(83)),
        {"min_folds": 1},
        InsufficientDataError,
        r"1-fold backtest needs at least 84 days of history \(56 to fit on \+ 1 × 28 to test on\); the series has 83",
    ),
    ("unknown gaps policy", lambda: daily(_long(200)), {"gaps": "ffill"}, ConfigError, "gaps is 'ffill'"),
    ("monthly freq", lambda: daily(_long(200)), {"freq": "M"}, ConfigError, "freq is 'M'"),
    (
        "malformed candidates",
        lambda: daily(_long(200)),
        {"candidates": [((1, 1), (1, 0, 1, 7))]},
        ConfigError,
        "expected pairs",
    ),
    ("no candidates", lambda: daily(_long(200)), {"candidates": []}, ConfigError, "candidates is empty"),
]


@pytest.mark.parametrize(
    ("make", "options", "error", "match"),
    [pytest.param(make, options, error, match, id=name) for name, make, options, error, match in BAD_INPUTS],
)
def test_bad_input_is_refused_with_a_reason(
    make: Callable[[], pd.Series], options: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        forecast_series(make(), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("days", "folds"), [(84, 1), (139, 2), (140, 3), (400, 3)])
def test_a_short_history_is_backtested_on_as_many_folds_as_it_holds(days: int, folds: int) -> None:
    series = pattern_with_noise(days, seed=days)
    result = forecast_series(series, min_folds=1)
    assert len(result.backtest) == folds and len(result.forecast) == 28
    assert list(result.backtest["cutoff"]) == list(series.index[days - 28 * np.arange(folds, 0, -1)])
    assert f"{folds} fold{'s' if folds > 1 else ''} of 28 days" in result.note


def test_unsorted_input_is_sorted_with_its_values() -> None:
    series = _with([3.0, 1.0, 2.0], ["2024-01-03", "2024-01-01", "2024-01-02"])
    prepared = prepare_series(series)
    assert list(prepared.observed) == [1.0, 2.0, 3.0]
    assert prepared.freq == "D"
    assert prepared.dates[0] == pd.Timestamp("2024-01-01")


def test_missing_days_are_filled_with_zero_and_negative_values_kept() -> None:
    series = _with([5.0, -2.0, 7.0], ["2024-01-01", "2024-01-02", "2024-01-05"])
    prepared = prepare_series(series)
    assert list(prepared.observed) == [5.0, -2.0, 0.0, 0.0, 7.0]
    assert prepared.filled == (pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-04"))


def test_weekly_frequency_is_anchored_on_the_data_weekday_and_gaps_can_be_filled() -> None:
    series = weekly([1.0, 2.0, 3.0, 4.0]).drop(pd.Timestamp("2010-02-12"))
    prepared = prepare_series(series, gaps="zero")
    assert (prepared.freq, prepared.season) == ("W-FRI", 52)
    assert list(prepared.observed) == [1.0, 0.0, 3.0, 4.0]


def test_frame_with_missing_column_names_it() -> None:
    with pytest.raises(DataValidationError, match=r"missing columns \['revenue'\]"):
        forecast_frame(pd.DataFrame({"day": ["2024-01-01"], "sales": [1.0]}))


def test_frame_with_unparseable_dates_says_so() -> None:
    frame = pd.DataFrame({"day": ["2024-01-01", "not a date"], "revenue": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match="'day' holds values that are not dates"):
        forecast_frame(frame)


# ---------------------------------------------------------------- model helpers, hand-computed


def test_seasonal_naive_repeats_the_last_season_and_widens_each_season() -> None:
    values = np.arange(1.0, 15.0)  # every value is 7 more than a week earlier: seasonal changes all 7
    result = seasonal_naive(values, season=7, horizon=10)
    np.testing.assert_array_equal(result.mean, [8, 9, 10, 11, 12, 13, 14, 8, 9, 10])
    np.testing.assert_allclose(result.sd, [7] * 7 + [7 * np.sqrt(2)] * 3)


@pytest.mark.parametrize(
    ("actual", "predicted", "training", "expected"),
    [
        pytest.param([3, 4], [2, 6], [1, 2, 3, 4, 2, 3, 4, 5], 1.5, id="scaled by the seasonal naive MAE of 1"),
        pytest.param([3, 4], [3, 4], [1, 2, 3, 4, 3, 5, 7, 9], 0.0, id="perfect forecast"),
        pytest.param([1, 2], [2, 3], [1, 2, 1, 2, 1, 2, 1, 2], 1.0, id="periodic training: one-step MAE of 1"),
        pytest.param([5, 5], [5, 5], [5, 5, 5, 5, 5, 5, 5, 5], 0.0, id="constant training, perfect"),
        pytest.param([5, 6], [5, 5], [5, 5, 5, 5, 5, 5, 5, 5], np.inf, id="constant training, wrong"),
    ],
)
def test_mase(actual: list[float], predicted: list[float], training: list[float], expected: float) -> None:
    result = mase(np.array(actual, float), np.array(predicted, float), training=np.array(training, float), season=4)
    assert result == pytest.approx(expected)


def test_coverage_counts_values_inside_the_band() -> None:
    forecast = PointForecast(np.array([10.0, 10.0, 10.0, 10.0]), np.array([1.0, 1.0, 1.0, 1.0]))
    assert coverage(np.array([10.0, 11.9, 12.1, 7.0]), forecast, 2.0) == 0.5


@pytest.mark.parametrize(
    ("mean", "sd", "problem"),
    [
        pytest.param([15.0, 20.0], [1.0, 1.0], None, id="within the range"),
        pytest.param([15.0, 31.0], [1.0, 1.0], "leaves the history's range", id="beyond one range above"),
        pytest.param([np.nan, 20.0], [1.0, 1.0], "non-finite", id="NaN mean"),
        pytest.param([15.0, 20.0], [1.0, np.inf], "non-finite", id="infinite spread"),
    ],
)
def test_implausible_forecasts_are_named(mean: list[float], sd: list[float], problem: str | None) -> None:
    history = np.array([10.0, 20.0, 15.0])  # range 10: plausible means lie in [0, 30]
    found = implausibility(PointForecast(np.array(mean), np.array(sd)), history)
    assert (found is None) if problem is None else (problem in (found or ""))


# ---------------------------------------------------------------- forecasts of series with known structure


@pytest.fixture(scope="module")
def pattern_result() -> ForecastResult:
    return forecast_series(pattern_with_noise(210, seed=0), horizon=14)


def test_forecast_follows_the_weekly_pattern(pattern_result: ForecastResult) -> None:
    result = pattern_result
    assert list(result.forecast.columns) == list(FORECAST_COLUMNS)
    expected_dates = pd.date_range("2024-07-29", periods=14, freq="D")  # the day after the 210th
    pd.testing.assert_index_equal(
        pd.DatetimeIndex(result.forecast["date"]), expected_dates, check_names=False, check_freq=False
    )
    expected = 100 + PATTERN[np.arange(210, 224) % 7]
    assert np.abs(result.forecast["mean"].to_numpy() - expected).max() < 3.0  # noise sd is 2
    assert not result.fallback and result.model.startswith("SARIMA(")
    assert result.order is not None and result.seasonal_order is not None and result.seasonal_order[3] == 7
    assert result.note.startswith(f"{result.model}, chosen by AIC among 3 candidates, beat seasonal naive")


def test_intervals_nest_and_widen_with_the_horizon(pattern_result: ForecastResult) -> None:
    f = pattern_result.forecast
    assert (f["lo95"] < f["lo80"]).all() and (f["lo80"] < f["mean"]).all()
    assert (f["mean"] < f["hi80"]).all() and (f["hi80"] < f["hi95"]).all()
    width = (f["hi95"] - f["lo95"]).to_numpy()
    assert (np.diff(width) >= -1e-9).all()
    assert width[-1] > width[0]


def test_backtest_reports_each_fold_and_the_means(pattern_result: ForecastResult) -> None:
    backtest = pattern_result.backtest
    assert list(backtest.columns) == list(BACKTEST_COLUMNS)
    assert list(backtest["fold"]) == [1, 2, 3]
    assert list(backtest["cutoff"]) == list(pd.to_datetime(["2024-06-17", "2024-07-01", "2024-07-15"]))
    assert pattern_result.mase_model == pytest.approx(backtest["mase_model"].mean())
    assert pattern_result.mase_naive == pytest.approx(backtest["mase_naive"].mean())
    assert pattern_result.mase_model < pattern_result.mase_naive  # white noise: naive repeats last week's noise


def test_candidates_table_names_the_choice(pattern_result: ForecastResult) -> None:
    table = pattern_result.candidates
    chosen = table[table["status"] == "chosen by AIC"]
    assert len(chosen) == 1 and chosen["model"].iloc[0] == pattern_result.model
    assert chosen["aic"].iloc[0] == pytest.approx(pattern_result.aic)
    assert chosen["aic"].iloc[0] == table["aic"].min()


def test_interval_coverage_on_a_simulated_sarima_process() -> None:
    results = [forecast_series(simulated_sarima(200, seed=seed), horizon=14) for seed in range(8)]
    folds = pd.concat([r.backtest for r in results])
    assert 0.85 <= folds["coverage95"].mean() <= 1.0
    assert 0.60 <= folds["coverage80"].mean() <= folds["coverage95"].mean()


# ---------------------------------------------------------------- fallback to seasonal naive


def test_exactly_periodic_history_uses_seasonal_naive_without_fitting() -> None:
    result = forecast_series(daily(100 + PATTERN[np.arange(140) % 7]), horizon=14)
    assert result.fallback and result.model == "seasonal naive[7]"
    np.testing.assert_array_equal(result.forecast["mean"], 100 + PATTERN[np.arange(140, 154) % 7])
    np.testing.assert_array_equal(result.forecast["lo95"], result.forecast["mean"])  # no change ever seen
    assert result.note.startswith("Seasonal naive used: the history repeats exactly every 7 days")
    assert result.candidates.empty and result.order is None and np.isnan(result.mase_model)


def test_sarima_losing_the_backtest_falls_back_and_says_so() -> None:
    rng = np.random.default_rng(1)
    nearly_periodic = daily(100 + PATTERN[np.arange(140) % 7] + rng.normal(0, 0.01, 140))
    result = forecast_series(nearly_periodic, horizon=14)
    assert result.fallback and result.model == "seasonal naive[7]"
    assert result.mase_model > result.mase_naive
    table = result.candidates
    selected = table.loc[table["status"] == "chosen by AIC", "model"].iloc[0]
    assert result.note.startswith(
        f"Seasonal naive used: {selected} lost to it in the backtest "
        f"(MASE {result.mase_model:.2f} vs {result.mase_naive:.2f}, 3 folds of 14 days)."
    )
    expected = nearly_periodic.to_numpy()[-7:][np.arange(14) % 7]
    np.testing.assert_allclose(result.forecast["mean"], expected)


def test_a_failed_fit_falls_back_and_says_why() -> None:
    no_parameters = [((0, 1, 0), (0, 1, 0, 7))]  # nothing to estimate: statsmodels refuses to fit it
    result = forecast_series(pattern_with_noise(140, seed=3), horizon=14, candidates=no_parameters)
    assert result.fallback and result.order is None and result.aic is None
    assert result.note.startswith("Seasonal naive used: no SARIMA candidate could be fitted.")
    assert "Rejected: SARIMA(0,1,0)(0,1,0)[7] failed to fit" in result.note
    assert result.candidates["status"].iloc[0].startswith("rejected: failed to fit")


def test_filled_days_are_reported_in_the_note() -> None:
    series = pattern_with_noise(150, seed=4).drop(pd.Timestamp("2024-03-01"))
    result = forecast_series(series, horizon=14)
    assert result.note.endswith("1 missing day was filled with 0 (2024-03-01).")


# ---------------------------------------------------------------- frames, several stores, BLAS


def test_forecast_frame_matches_forecast_series_on_shuffled_rows() -> None:
    series = pattern_with_noise(140, seed=5)
    frame = pd.DataFrame({"day": series.index, "revenue": series.to_numpy()}).sample(frac=1.0, random_state=0)
    from_frame = forecast_frame(frame, horizon=14)
    from_series = forecast_series(series, horizon=14)
    pd.testing.assert_frame_equal(from_frame.forecast, from_series.forecast)
    assert from_frame.note == from_series.note


def test_forecast_stores_names_the_store_whose_history_is_too_short() -> None:
    good = pattern_with_noise(140, seed=6)
    frame = pd.concat(
        [
            pd.DataFrame({"store_code": "B", "day": good.index, "revenue": good.to_numpy()}),
            pd.DataFrame({"store_code": "A", "day": good.index[:50], "revenue": good.to_numpy()[:50]}),
        ]
    )
    with pytest.raises(InsufficientDataError, match=r"Store 'A': Forecasting 14 days ahead") as caught:
        forecast_stores(frame, horizon=14)
    assert caught.value.details["store_code"] == "A"
    results = forecast_stores(frame[frame["store_code"] == "B"], horizon=14)
    summary = summarise_backtests(results)
    assert list(summary.columns) == ["store_code", "model", "mase_model", "mase_naive", "fallback", "note"]
    assert summary["store_code"].tolist() == ["B"] and summary["note"].iloc[0] == results["B"].note


def test_limit_blas_threads_pins_and_restores() -> None:
    from threadpoolctl import threadpool_info

    before = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    with limit_blas_threads(1):
        assert all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas")
    after = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
    assert after == before


# ---------------------------------------------------------------- the Walmart weekly file


@pytest.mark.shared_data
def test_walmart_backtest_per_store_against_seasonal_naive(shared_data: Path) -> None:
    frame = pd.read_csv(shared_data / "walmart_store_sales" / "Walmart_Store_sales.csv")
    frame["Date"] = pd.to_datetime(frame["Date"], format="%d-%m-%Y")
    subset = frame[frame["Store"].isin([1, 2, 3, 4, 5])]
    results = forecast_stores(subset, id_col="Store", date_col="Date", value_col="Weekly_Sales", horizon=13)
    summary = summarise_backtests(results, id_col="Store")
    assert summary["Store"].tolist() == ["1", "2", "3", "4", "5"]
    assert np.isfinite(summary["mase_model"]).all() and np.isfinite(summary["mase_naive"]).all()
    for result in results.values():
        assert result.freq == "W-FRI" and len(result.forecast) == 13
        assert result.forecast["date"].iloc[0] == pd.Timestamp("2012-11-02")  # the week after 2012-10-26
        model_better = result.mase_model < result.mase_naive
        assert result.fallback == (not model_better)  # the better of the two is used
        assert result.model.startswith("SARIMA(") == model_better
    # Measured on all 45 stores: SARIMA with a seasonal difference beats seasonal naive (mean MASE ~0.71 vs ~0.97).
    assert summary["mase_model"].mean() < summary["mase_naive"].mean()
