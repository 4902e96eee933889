"""report_lib.warehouse.results: forecasts and anomaly flags saved and loaded back, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from report_lib.errors import DataValidationError
from report_lib.forecast import ForecastResult
from report_lib.warehouse.results import (
    FORECAST_FRAME_COLUMNS,
    load_anomalies,
    load_latest_forecast,
    save_anomalies,
    save_forecast,
)
from report_lib.warehouse.schema import detected_anomalies, forecasts, stores

MADE_AT = dt.datetime(2024, 7, 1, 6, 30, 0)
DETECTED_AT = dt.datetime(2024, 7, 2, 5, 0, 0)


def result_of(means: list[float], *, mase_model: float = 0.8, fallback: bool = False) -> ForecastResult:
    """A ForecastResult built by hand: three days from 2024-07-01, bands ±1 and ±2 around the means."""
    mean = np.array(means)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-07-01", periods=len(means), freq="D"),
            "mean": mean,
            "lo80": mean - 1,
            "hi80": mean + 1,
            "lo95": mean - 2,
            "hi95": mean + 2,
        }
    )
    return ForecastResult(
        forecast=frame,
        model="seasonal naive[7]" if fallback else "SARIMA(1,1,1)(1,0,1)[7]",
        order=(1, 1, 1),
        seasonal_order=(1, 0, 1, 7),
        aic=123.4,
        backtest=pd.DataFrame(),
        mase_model=mase_model,
        mase_naive=1.1,
        fallback=fallback,
        note="made by hand",
        candidates=pd.DataFrame(),
        freq="D",
        horizon=len(means),
    )


@pytest.fixture
def warehouse_with_stores(warehouse: Engine) -> Engine:
    with warehouse.begin() as conn:
        conn.execute(stores.insert(), [{"code": "S1", "name": "One"}, {"code": "S2", "name": "Two"}])
    return warehouse


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


# ---------------------------------------------------------------- forecasts


def test_forecast_round_trip(warehouse_with_stores: Engine) -> None:
    written = save_forecast(
        warehouse_with_stores, store_code="S1", metric="revenue", result=result_of([10.0, 20.0, 30.5]), made_at=MADE_AT
    )
    assert written == 3
    loaded = load_latest_forecast(warehouse_with_stores, store_code="S1", metric="revenue")
    assert list(loaded.columns) == list(FORECAST_FRAME_COLUMNS)
    expected = pd.DataFrame(
        {
            "day": pd.to_datetime(["2024-07-01", "2024-07-02", "2024-07-03"]),
            "mean": [10.0, 20.0, 30.5],
            "lo80": [9.0, 19.0, 29.5],
            "hi80": [11.0, 21.0, 31.5],
            "lo95": [8.0, 18.0, 28.5],
            "hi95": [12.0, 22.0, 32.5],
            "model": ["SARIMA(1,1,1)(1,0,1)[7]"] * 3,
            "backtest_mase": [0.8] * 3,
            "naive_mase": [1.1] * 3,
            "fallback": [False] * 3,
            "made_at": pd.to_datetime([MADE_AT] * 3),
        }
    )
    pd.testing.assert_frame_equal(loaded, expected, check_dtype=False, check_index_type=False)


def test_latest_forecast_wins_and_resaving_a_run_replaces_it(warehouse_with_stores: Engine) -> None:
    engine = warehouse_with_stores
    save_forecast(engine, store_code="S1", metric="revenue", result=result_of([1.0, 2.0, 3.0]), made_at=MADE_AT)
    later = MADE_AT + dt.timedelta(days=1)
    save_forecast(engine, store_code="S1", metric="revenue", result=result_of([4.0, 5.0, 6.0]), made_at=later)
    save_forecast(engine, store_code="S1", metric="revenue", result=result_of([7.0, 8.0, 9.0]), made_at=later)
    save_forecast(engine, store_code="S2", metric="revenue", result=result_of([99.0, 99.0, 99.0]), made_at=later)
    save_forecast(engine, store_code="S1", metric="orders", result=result_of([50.0, 50.0, 50.0]), made_at=later)
    assert count(engine, forecasts) == 12  # 4 runs of 3 days: the re-saved run replaced its first version
    loaded = load_latest_forecast(engine, store_code="S1", metric="revenue")
    assert loaded["mean"].tolist() == [7.0, 8.0, 9.0]
    assert loaded["made_at"].tolist() == [pd.Timestamp(later)] * 3


@pytest.mark.parametrize(
    ("mase_model", "expected"),
    [
        pytest.param(float("nan"), None, id="no SARIMA fitted: NULL"),
        pytest.param(float("inf"), math.inf, id="implausible fold: infinite"),
    ],
)
def test_missing_and_infinite_backtest_scores_round_trip(
    warehouse_with_stores: Engine, mase_model: float, expected: float | None
) -> None:
    result = result_of([5.0, 6.0, 7.0], mase_model=mase_model, fallback=True)
    save_forecast(warehouse_with_stores, store_code="S1", metric="revenue", result=result, made_at=MADE_AT)
    with warehouse_with_stores.connect() as conn:
        stored = conn.execute(select(forecasts.c.backtest_mase, forecasts.c.fallback).distinct()).all()
    assert stored == [(expected, True)]
    loaded = load_latest_forecast(warehouse_with_stores, store_code="S1", metric="revenue")
    assert loaded["fallback"].tolist() == [True] * 3
    assert loaded["model"].iloc[0] == "seasonal naive[7]"
    assert (np.isnan(loaded["backtest_mase"]) if expected is None else np.isinf(loaded["backtest_mase"])).all()


def test_forecast_for_an_unknown_store_is_refused(warehouse_with_stores: Engine) -> None:
    with pytest.raises(DataValidationError, match=r"Stores \['S9'\] are not in the warehouse's stores table"):
        save_forecast(warehouse_with_stores, store_code="S9", metric="revenue", result=result_of([1.0]))
    assert count(warehouse_with_stores, forecasts) == 0


def test_no_saved_forecast_loads_as_an_empty_frame(warehouse_with_stores: Engine) -> None:
    loaded = load_latest_forecast(warehouse_with_stores, store_code="S1", metric="revenue")
    assert loaded.empty and list(loaded.columns) == list(FORECAST_FRAME_COLUMNS)


# ---------------------------------------------------------------- anomalies


def flags(rows: list[tuple[str, str, str, str, float, float, str, str]]) -> pd.DataFrame:
    """Flags shaped like detect_anomalies' output, including its `expected` column (not stored)."""
    frame = pd.DataFrame(
        rows, columns=["store_code", "day", "metric", "method", "value", "score", "direction", "severity"]
    )
    frame["day"] = pd.to_datetime(frame["day"])
    frame["expected"] = 100.0
    return frame


FIRST_FLAGS = [
    ("S1", "2024-06-01", "revenue", "robust", 250.0, 5.1, "up", "moderate"),
    ("S1", "2024-06-05", "revenue", "robust", 10.0, -9.0, "down", "extreme"),
    ("S1", "2024-06-05", "revenue", "rolling", 10.0, -4.0, "down", "moderate"),
    ("S2", "2024-06-03", "orders", "robust", 400.0, 6.0, "up", "high"),
]


def test_anomalies_round_trip(warehouse_with_stores: Engine) -> None:
    assert save_anomalies(warehouse_with_stores, flags(FIRST_FLAGS), detected_at=DETECTED_AT) == 4
    loaded = load_anomalies(warehouse_with_stores)
    assert loaded.columns.tolist() == [
        "store_code",
        "metric",
        "day",
        "method",
        "value",
        "score",
        "direction",
        "severity",
        "detected_at",
    ]
    assert loaded[["store_code", "day", "method", "score"]].values.tolist() == [  # noqa: PD011
        ["S1", pd.Timestamp("2024-06-01"), "robust", 5.1],
        ["S1", pd.Timestamp("2024-06-05"), "robust", -9.0],
        ["S1", pd.Timestamp("2024-06-05"), "rolling", -4.0],
        ["S2", pd.Timestamp("2024-06-03"), "robust", 6.0],
    ]
    assert loaded["detected_at"].unique().tolist() == [pd.Timestamp(DETECTED_AT)]


def test_saving_again_replaces_the_same_days_only(warehouse_with_stores: Engine) -> None:
    engine = warehouse_with_stores
    save_anomalies(engine, flags(FIRST_FLAGS), detected_at=DETECTED_AT)
    later = DETECTED_AT + dt.timedelta(days=1)
    rerun = [("S1", "2024-06-05", "revenue", "robust", 12.0, -7.0, "down", "high")]
    save_anomalies(engine, flags(rerun), detected_at=later)
    loaded = load_anomalies(engine, store_code="S1", metric="revenue", method="robust")
    assert loaded[["day", "value", "severity"]].values.tolist() == [  # noqa: PD011
        [pd.Timestamp("2024-06-01"), 250.0, "moderate"],  # another day: kept
        [pd.Timestamp("2024-06-05"), 12.0, "high"],  # same store, metric, method and day: replaced
    ]
    assert loaded["detected_at"].tolist() == [pd.Timestamp(DETECTED_AT), pd.Timestamp(later)]
    rolling = load_anomalies(engine, store_code="S1", method="rolling")
    assert rolling["score"].tolist() == [-4.0]  # another method on the same day: kept
    assert count(engine, detected_anomalies) == 4


def test_load_anomalies_filters_by_day_range(warehouse_with_stores: Engine) -> None:
    save_anomalies(warehouse_with_stores, flags(FIRST_FLAGS), detected_at=DETECTED_AT)
    loaded = load_anomalies(warehouse_with_stores, start=dt.date(2024, 6, 2), end=dt.date(2024, 6, 4))
    assert loaded[["store_code", "day"]].values.tolist() == [["S2", pd.Timestamp("2024-06-03")]]  # noqa: PD011
    assert load_anomalies(warehouse_with_stores, metric="margin").empty


def test_empty_flags_write_nothing(warehouse_with_stores: Engine) -> None:
    assert save_anomalies(warehouse_with_stores, flags([])) == 0
    assert count(warehouse_with_stores, detected_anomalies) == 0


BAD_FLAGS = [
    pytest.param(flags(FIRST_FLAGS).drop(columns=["severity"]), r"missing columns \['severity'\]", id="missing column"),
    pytest.param(
        flags([("S1", "2024-06-01", "revenue", "robust", 1.0, 5.0, "sideways", "high")]),
        r"directions \['sideways'\] are not allowed",
        id="bad direction",
    ),
    pytest.param(
        flags([("S1", "2024-06-01", "revenue", "robust", float("nan"), 5.0, "up", "high")]),
        "1 anomaly flags have empty fields",
        id="NaN value",
    ),
    pytest.param(flags([FIRST_FLAGS[0], FIRST_FLAGS[0]]), "1 anomaly flags repeat", id="duplicated flag"),
    pytest.param(
        flags([("S7", "2024-06-01", "revenue", "robust", 1.0, 5.0, "up", "high")]),
        r"Stores \['S7'\] are not in the warehouse's stores table",
        id="unknown store",
    ),
]


@pytest.mark.parametrize(("bad", "match"), BAD_FLAGS)
def test_bad_flags_are_refused_and_nothing_is_written(sqlite_warehouse: Engine, bad: pd.DataFrame, match: str) -> None:
    with sqlite_warehouse.begin() as conn:
        conn.execute(stores.insert(), [{"code": "S1", "name": "One"}])
    with pytest.raises(DataValidationError, match=match):
        save_anomalies(sqlite_warehouse, bad)
    assert count(sqlite_warehouse, detected_anomalies) == 0
