import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from report_lib.errors import ConfigError, DataValidationError, InsufficientDataError
from report_lib.insights import write_insights
from report_lib.kpis import compute_kpis
from report_lib.periods import parse_period
from report_lib.trends import (
    best_and_worst_days,
    decompose,
    growth_rates,
    moving_average,
    resample_metric,
    weekday_profile,
)

NAN = float("nan")


def daily(values: dict[str, float], *, store: str = "S", grain: str = "day") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "store_code": store,
            "day": pd.to_datetime(list(values)),
            "grain": grain,
            "revenue": pd.Series(list(values.values()), dtype="float64"),
        }
    )


def days_from(start: str, values: list[float]) -> dict[str, float]:
    return {f"{day:%Y-%m-%d}": v for day, v in zip(pd.date_range(start, periods=len(values)), values, strict=True)}


def series(start: str, values: list[float], freq: str = "D") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq=freq, name="day"), name="revenue")


def test_daily_gaps_are_filled_with_zero_but_unknown_stays_unknown() -> None:
    got = resample_metric(daily({"2024-03-04": 10, "2024-03-05": NAN, "2024-03-07": 40}), freq="D")
    pd.testing.assert_series_equal(got, series("2024-03-04", [10, NAN, 0, 40]))


def test_weeks_are_monday_to_sunday_labelled_by_sunday_and_partial_ends_dropped() -> None:
    frame = daily(days_from("2024-03-04", [float(d) for d in range(4, 18)] + [100.0]))  # Mon 4 .. Mon 18 March
    pd.testing.assert_series_equal(resample_metric(frame, freq="W"), series("2024-03-10", [49.0, 98.0], "W-SUN"))
    kept = resample_metric(frame, freq="W", drop_partial=False)
    assert kept.tolist() == [49, 98, 100]


def test_an_unknown_day_makes_its_week_unknown() -> None:
    frame = daily(days_from("2024-03-04", [1.0] * 3 + [NAN] + [1.0] * 10))
    assert resample_metric(frame, freq="W").tolist() == pytest.approx([NAN, 7.0], nan_ok=True)


def test_months_from_days() -> None:
    frame = daily(days_from("2024-01-15", [1.0] * 77))  # 15 Jan .. 31 Mar
    pd.testing.assert_series_equal(resample_metric(frame, freq="M"), series("2024-02-01", [29.0, 31.0], "MS"))


def test_several_stores_are_added() -> None:
    frame = pd.concat([daily({"2024-03-04": 1, "2024-03-05": 2}), daily({"2024-03-05": 10}, store="T")])
    assert resample_metric(frame, freq="D").tolist() == [1, 12]


def weekly_rows(values: dict[str, float]) -> pd.DataFrame:
    return daily(values, grain="week")


def test_weekly_rows_stay_weekly_and_a_missing_week_is_zero() -> None:
    frame = weekly_rows({"2024-03-01": 700, "2024-03-15": 900})
    got = resample_metric(frame)  # freq=None: the finest grain the data has
    pd.testing.assert_series_equal(got, series("2024-03-01", [700.0, 0.0, 900.0], "W-FRI"))


def test_weekly_rows_are_never_spread_into_days() -> None:
    with pytest.raises(InsufficientDataError, match="cannot be shown by day"):
        resample_metric(weekly_rows({"2024-03-01": 700}), freq="D")
    with pytest.raises(InsufficientDataError, match="need daily rows"):
        best_and_worst_days(weekly_rows({"2024-03-01": 700}))


def test_weekly_rows_by_month_use_the_week_end_day() -> None:
    fridays = {f"{day:%Y-%m-%d}": 7.0 for day in pd.date_range("2024-01-05", "2024-03-29", freq="W-FRI")}
    got = resample_metric(weekly_rows(fridays), freq="M")  # March is dropped: its last week is missing
    pd.testing.assert_series_equal(got, series("2024-01-01", [28.0, 28.0], "MS"))


def test_weekly_rows_on_mixed_weekdays_are_refused() -> None:
    with pytest.raises(DataValidationError, match="should all end on a Fri"):
        resample_metric(weekly_rows({"2024-03-01": 1, "2024-03-07": 1}), freq="W")


def test_empty_frame_gives_an_empty_series() -> None:
    got = resample_metric(daily({}), freq="W")
    assert got.empty and got.name == "revenue"


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda f: f.drop(columns=["revenue"]), DataValidationError, "missing columns \\['revenue'\\]"),
        (lambda f: pd.concat([f, f]), DataValidationError, "share a \\(store, day\\)"),
        (lambda f: f.assign(revenue="x"), DataValidationError, "not numbers"),
    ],
)
def test_bad_frames(change: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        resample_metric(change(daily({"2024-03-04": 1.0})), freq="D")  # type: ignore[operator]


def test_unknown_freq_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="expected 'D'"):
        resample_metric(daily({"2024-03-04": 1.0}), freq="Q")  # type: ignore[arg-type]


def test_unsorted_input_is_sorted_and_not_mutated() -> None:
    frame = daily({"2024-03-06": 3, "2024-03-04": 1, "2024-03-05": 2})
    before = frame.copy()
    assert resample_metric(frame, freq="D").tolist() == [1, 2, 3]
    pd.testing.assert_frame_equal(frame, before)


def test_moving_average() -> None:
    got = moving_average(series("2024-03-04", [1.0, 2.0, 3.0, 4.0]), 2)
    assert got.tolist() == pytest.approx([NAN, 1.5, 2.5, 3.5], nan_ok=True)
    assert got.name == "revenue_ma2"
    with pytest.raises(ConfigError, match="window is 0"):
        moving_average(series("2024-03-04", [1.0]), 0)


def test_growth_rates_period_and_year() -> None:
    got = growth_rates(series("2024-01-01", [100.0, 110.0, 0.0, 50.0], "MS"), year_lag=2)
    assert got["pop_pct"].tolist() == pytest.approx([NAN, 10.0, -100.0, NAN], nan_ok=True)  # base 0: NaN
    assert got["yoy_pct"].tolist() == pytest.approx([NAN, NAN, -100.0, -60 / 110 * 100], nan_ok=True)


def test_growth_rates_default_year_is_364_days_for_daily() -> None:
    values = [100.0] * 364 + [150.0]
    got = growth_rates(series("2023-03-06", values))
    assert got["yoy_pct"].iloc[-1] == pytest.approx(50.0)
    assert got["yoy_pct"].iloc[:-1].isna().all()


def test_growth_rates_need_a_regular_series() -> None:
    irregular = pd.Series([1.0, 2.0, 3.0], index=pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-09"]))
    with pytest.raises(DataValidationError, match="regular steps"):
        growth_rates(irregular)


def test_decompose_recovers_a_weekly_pattern() -> None:
    pattern = np.array([10.0, 12.0, 11.0, 13.0, 20.0, 30.0, 4.0])
    values = np.tile(pattern, 6) + np.arange(42) * 0.5
    got = decompose(series("2024-03-04", list(values)))
    assert list(got.columns) == ["observed", "trend", "seasonal", "resid"]
    np.testing.assert_allclose(got["trend"] + got["seasonal"] + got["resid"], values)
    np.testing.assert_allclose(got["seasonal"].iloc[14:21], pattern - pattern.mean(), atol=0.5)


def test_decompose_needs_two_full_periods_and_no_unknowns() -> None:
    with pytest.raises(InsufficientDataError, match="needs two full periods \\(14 points"):
        decompose(series("2024-03-04", [1.0] * 13))
    with pytest.raises(InsufficientDataError, match="104 points of period 52"):
        decompose(series("2024-03-03", [1.0] * 60, "W-SUN"))
    with pytest.raises(DataValidationError, match="1 unknown values"):
        decompose(series("2024-03-04", [1.0] * 13 + [NAN]))


def test_weekday_profile_counts_closed_days_as_zero() -> None:
    values = [10.0, 1, 6, 1, 1, 1, 1, 20, 1, NAN, 1, 1, 1, 1]  # Mon 4 .. Sun 17 March
    frame = daily(days_from("2024-03-04", values)).drop(index=[2])  # Wed 6 March: closed
    got = weekday_profile(frame)
    assert list(got.index) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert got.loc["Mon", "mean"] == 15.0 and got.loc["Mon", "days"] == 2
    assert got.loc["Wed", "mean"] == 0.0 and got.loc["Wed", "days"] == 1  # closed (0) + unknown (left out)


def test_weekday_profile_of_one_day() -> None:
    got = weekday_profile(daily({"2024-03-06": 5.0}))
    assert got["days"].tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert got.loc["Wed", "mean"] == 5.0 and got["mean"].isna().sum() == 6


def test_best_and_worst_days() -> None:
    frame = daily(days_from("2024-03-04", [50.0, 10.0, 30.0, 10.0, 40.0]))
    got = best_and_worst_days(frame, n=2)
    expected = pd.DataFrame(
        {
            "kind": ["best", "best", "worst", "worst"],
            "rank": [1, 2, 1, 2],
            "day": pd.to_datetime(["2024-03-04", "2024-03-08", "2024-03-05", "2024-03-07"]),
            "weekday": ["Mon", "Fri", "Tue", "Thu"],
            "value": [50.0, 40.0, 10.0, 10.0],
        }
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    short = best_and_worst_days(frame, n=3)  # 5 days: 3 best, the 2 left are the worst
    assert short["kind"].tolist() == ["best"] * 3 + ["worst"] * 2


def test_best_and_worst_skip_closed_and_unknown_days() -> None:
    frame = daily({"2024-03-04": 5.0, "2024-03-06": NAN, "2024-03-07": 7.0})
    got = best_and_worst_days(frame, n=1)
    assert got["day"].dt.strftime("%m-%d").tolist() == ["03-07", "03-04"]
    assert best_and_worst_days(daily({"2024-03-04": 5.0})).shape[0] == 1


@pytest.mark.shared_data
def test_walmart_weekly_store_gets_kpis_trends_and_stl(shared_data: Path) -> None:
    raw = pd.read_csv(shared_data / "walmart_store_sales" / "Walmart_Store_sales.csv")
    raw["Date"] = pd.to_datetime(raw["Date"], format="%d-%m-%Y")
    store = raw[raw["Store"] == 1]
    frame = pd.DataFrame({"store_code": "1", "day": store["Date"], "grain": "week", "revenue": store["Weekly_Sales"]})
    for name in ["orders", "units", "customers", "cost", "margin", "returns", "return_units"]:
        frame[name] = NAN  # aggregate data: only sales are known

    weekly = resample_metric(frame)
    assert weekly.index.freqstr == "W-FRI" and len(weekly) == 143  # 2010-02-05 .. 2012-10-26, no missing week
    assert weekly.sum() == pytest.approx(store["Weekly_Sales"].sum())
    parts = decompose(weekly)  # period 52: 143 weeks is more than two years
    assert parts["seasonal"].abs().max() > 0
    assert growth_rates(weekly)["yoy_pct"].notna().sum() == 143 - 52

    september = store[(store["Date"] >= "2012-09-01") & (store["Date"] <= "2012-09-30")]["Weekly_Sales"]
    period = parse_period("2012-09", today=dt.date(2012, 11, 1))
    table = compute_kpis(frame, period).set_index("kpi")
    assert len(september) == 4 and table.loc["revenue", "value"] == pytest.approx(september.sum())
    assert table.loc["revenue", "approximate"] and np.isnan(table.loc["aov", "value"])
    assert "approximate, from weekly totals" in write_insights(compute_kpis(frame, period), period=period)[0]
    with pytest.raises(InsufficientDataError, match="weekly"):
        weekday_profile(frame)
