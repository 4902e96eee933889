"""Forecasts: report_lib.forecast (AIC-selected SARIMA + 80/95% intervals + 3-fold backtest + fallback) against a
fixed-order SARIMAX(1,1,1)(1,0,1,7) and seasonal naive, on 50 synthetic daily stores × 2 years; one store in a fresh
process; the 45 Walmart stores (weekly, 13 weeks ahead) when ../shared/data is present.

Synthetic stores: level, weekday pattern, yearly season with a December peak, trend, AR(1) log-noise, a few 3-day
promotions, Christmas Day closed (a missing day, filled as zero sales). Horizon 28 days, 3 folds of 28 days.
"fixed SARIMAX" is what a notebook would write: ``SARIMAX(train, order, seasonal_order).fit()`` per fold and once
on the full history for the final forecast with intervals. MASE is scaled by each fold's in-sample seasonal naive
MAE; "ours (used)" is the backtest MASE of the method used for each series (SARIMA or the seasonal naive
fallback: chosen on the same folds, so optimistic by construction); "ours (SARIMA)" is the AIC-selected SARIMA alone.
BLAS runs at one thread. --quick: 8 synthetic stores, 10 Walmart stores.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TypeVar  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from report_lib.forecast import ForecastResult, forecast_series, limit_blas_threads  # noqa: E402
from report_lib.forecast_models import mase, seasonal_naive  # noqa: E402

DAYS = 730
HORIZON = 28
FOLDS = 3
SEASON = 7
START = pd.Timestamp("2023-01-02")
WEEKDAY_PATTERN = np.array([0.85, 0.9, 0.95, 1.0, 1.15, 1.35, 0.8])
WALMART = Path(__file__).resolve().parents[2] / "shared" / "data" / "walmart_store_sales" / "Walmart_Store_sales.csv"
FIXED_ORDER = ((1, 1, 1), (1, 0, 1, 7))
T = TypeVar("T")


def synthetic_store(seed: int, days: int = DAYS) -> pd.Series:
    """One store's daily revenue, Christmas Day missing (closed)."""
    rng = np.random.default_rng(seed)
    calendar = pd.date_range(START, periods=days, freq="D")
    t = np.arange(days)
    weekday = WEEKDAY_PATTERN * rng.uniform(0.9, 1.1, 7)
    yearly = 1 + rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * (t - rng.uniform(200, 320)) / 365.25)
    december = 1 + rng.uniform(0.1, 0.4) * np.clip((calendar.day_of_year.to_numpy() - 330) / 25, 0, 1)
    trend = 1 + rng.uniform(-0.05, 0.15) * t / 365.25
    noise = np.zeros(days)
    phi, sigma = rng.uniform(0.3, 0.8), rng.uniform(0.04, 0.12)
    shocks = rng.normal(0, sigma, days)
    for i in range(1, days):
        noise[i] = phi * noise[i - 1] + shocks[i]
    promo = np.ones(days)
    for start in rng.integers(0, days - 3, size=2 * days // 365):
        promo[start : start + 3] *= rng.uniform(1.2, 1.5)
    revenue = rng.uniform(2_000, 20_000) * weekday[calendar.day_of_week] * yearly * december * trend * promo
    series = pd.Series(revenue * np.exp(noise), index=calendar, name="revenue")
    christmas = (calendar.month == 12) & (calendar.day == 25)
    return series[~christmas]


def fixed_sarimax(series: pd.Series) -> float:
    """The plain notebook approach: refit SARIMAX(1,1,1)(1,0,1,7) per fold, then on everything; backtest MASE.

    A fit that raises (statsmodels' LU decomposition error happens) counts as a failure: NaN.
    """
    try:
        return _fixed_sarimax(series)
    except (np.linalg.LinAlgError, ValueError):
        return float("nan")


def _fixed_sarimax(series: pd.Series) -> float:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    values = series.asfreq("D", fill_value=0.0).to_numpy()
    cutoffs = [len(values) - (FOLDS - k) * HORIZON for k in range(FOLDS)]
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cutoff in cutoffs:
            train = values[:cutoff]
            fitted = SARIMAX(train, order=FIXED_ORDER[0], seasonal_order=FIXED_ORDER[1]).fit(disp=False)
            predicted = fitted.forecast(HORIZON)
            scores.append(mase(values[cutoff : cutoff + HORIZON], predicted, training=train, season=SEASON))
        final = SARIMAX(values, order=FIXED_ORDER[0], seasonal_order=FIXED_ORDER[1]).fit(disp=False)
        prediction = final.get_forecast(HORIZON)
        [prediction.conf_int(alpha=alpha) for alpha in (0.2, 0.05)]
    return float(np.mean(scores))


def naive_backtest(series: pd.Series, *, season: int = SEASON, horizon: int = HORIZON, freq: str = "D") -> float:
    """Seasonal naive alone: the same folds, and the final forecast with intervals."""
    values = series.asfreq(freq, fill_value=0.0).to_numpy()
    scores = []
    for k in range(FOLDS):
        cutoff = len(values) - (FOLDS - k) * horizon
        train = values[:cutoff]
        predicted = seasonal_naive(train, season=season, horizon=horizon).mean
        scores.append(mase(values[cutoff : cutoff + horizon], predicted, training=train, season=season))
    seasonal_naive(values, season=season, horizon=horizon).bounds(1.96)
    return float(np.mean(scores))


def used_mase(result: ForecastResult) -> float:
    return result.mase_naive if result.fallback else result.mase_model


def timed(function: Callable[[], T]) -> tuple[tuple[float, float], T]:
    """(wall seconds, CPU seconds of this process) and the value: CPU time is what a busy machine distorts least."""
    start, cpu = time.perf_counter(), time.process_time()
    value = function()
    return (time.perf_counter() - start, time.process_time() - cpu), value


def summary_row(
    case: str, method: str, seconds: list[tuple[float, float]], scores: list[float], **extra: object
) -> dict[str, object]:
    finite = [s for s in scores if np.isfinite(s)]
    wall = [w for w, _ in seconds]
    cpu = [c for _, c in seconds]
    return {
        "case": case,
        "method": method,
        "series": len(seconds),
        "wall s/series mean": statistics.fmean(wall),
        "wall s/series max": max(wall),
        "cpu s/series mean": statistics.fmean(cpu),
        "cpu s/series max": max(cpu),
        "MASE mean": statistics.fmean(finite) if finite else float("nan"),
        "MASE median": statistics.median(finite) if finite else float("nan"),
        **extra,
    }


def bench_synthetic(stores: int) -> list[dict[str, object]]:
    series = [synthetic_store(seed) for seed in range(stores)]
    forecast_series(series[0], horizon=HORIZON, folds=FOLDS)  # warm: imports, first-call caches
    ours_t, ours = zip(
        *(timed(lambda s=s: forecast_series(s, horizon=HORIZON, folds=FOLDS)) for s in series), strict=True
    )
    fixed_t, fixed = zip(*(timed(lambda s=s: fixed_sarimax(s)) for s in series), strict=True)
    ours_fixed_t, ours_fixed = zip(
        *(
            timed(lambda s=s: forecast_series(s, horizon=HORIZON, folds=FOLDS, candidates=[FIXED_ORDER]))
            for s in series
        ),
        strict=True,
    )
    naive_t, naive = zip(*(timed(lambda s=s: naive_backtest(s)) for s in series), strict=True)
    case = f"daily synthetic ×{stores}, h={HORIZON}"
    fallbacks = sum(r.fallback for r in ours)
    return [
        summary_row(case, "ours (used)", list(ours_t), [used_mase(r) for r in ours], fallbacks=fallbacks),
        summary_row(case, "ours (SARIMA)", list(ours_t), [r.mase_model for r in ours]),
        summary_row(case, "fixed SARIMAX(1,1,1)(1,0,1,7)", list(fixed_t), list(fixed), failed=sum(np.isnan(fixed))),
        summary_row(case, "ours, fixed order only (SARIMA)", list(ours_fixed_t), [r.mase_model for r in ours_fixed]),
        summary_row(case, "seasonal naive", list(naive_t), list(naive)),
    ]


FRESH_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from benchmarks.bench_forecast import synthetic_store
from report_lib.forecast import forecast_series
result = forecast_series(synthetic_store(0), horizon=28, folds=3)
print(time.process_time())  # CPU seconds of the whole process: startup, imports, forecast
"""


def bench_fresh_process() -> dict[str, object]:
    """One store in a new interpreter: imports + forecast + backtest, as a first notebook cell pays them."""
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", FRESH_SCRIPT.format(root=root)], env=env, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    return {
        "case": "one daily store, fresh process",
        "method": "ours (used)",
        "series": 1,
        "wall s/series mean": wall,
        "cpu s/series mean": float(done.stdout.strip().splitlines()[-1]),
    }


def walmart_series() -> dict[str, pd.Series]:
    frame = pd.read_csv(WALMART)
    frame["Date"] = pd.to_datetime(frame["Date"], format="%d-%m-%Y")
    return {
        f"W{store:02d}": pd.Series(group["Weekly_Sales"].to_numpy(), index=pd.DatetimeIndex(group["Date"]))
        for store, group in frame.groupby("Store")
    }


def bench_walmart(limit: int | None) -> list[dict[str, object]]:
    if not WALMART.exists():
        return [{"case": "Walmart weekly", "method": "skipped: ../shared/data absent"}]
    stores = list(walmart_series().items())[:limit]
    timings, results = zip(
        *(timed(lambda s=s: forecast_series(s, horizon=13, folds=3)) for _, s in stores), strict=True
    )
    naive_t, naive = zip(
        *(timed(lambda s=s: naive_backtest(s, season=52, horizon=13, freq="W-FRI")) for _, s in stores), strict=True
    )
    case = f"Walmart weekly ×{len(stores)}, h=13"
    wins = sum(r.mase_model < r.mase_naive for r in results)
    return [
        summary_row(
            case,
            "ours (used)",
            list(timings),
            [used_mase(r) for r in results],
            fallbacks=sum(r.fallback for r in results),
        ),
        summary_row(case, "ours (SARIMA)", list(timings), [r.mase_model for r in results], sarima_wins=wins),
        summary_row(case, "seasonal naive", list(naive_t), list(naive)),
    ]


def run(quick: bool = False) -> list[dict[str, object]]:
    with limit_blas_threads(1):
        rows = bench_synthetic(8 if quick else 50)
        rows.append(bench_fresh_process())
        rows.extend(bench_walmart(10 if quick else None))
    return rows


if __name__ == "__main__":
    from benchmarks.run import markdown_table

    print(markdown_table(run(quick="--quick" in sys.argv)))
