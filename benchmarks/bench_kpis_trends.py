"""KPIs, trends, STL and insights on synthetic daily metrics: 50 stores x 730 days (36,500 rows) in memory.

Synthetic frame: per store a base level, weekday pattern, yearly season, slow trend and log-normal noise; Christmas
Day closed (no row: a gap); costs known. Each row times one analysis over every store (one call per store, as the
runner's per-store notebooks do, unless the analysis says "all stores"), median of 5 runs. --quick: 5 stores.
Target: everything one store's report computes here (KPIs, three resamplings, growth, STL, weekday profile, best
and worst days, insights) under 0.5 s a store. Wall-clock times: other processes on the machine inflate them.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from report_lib.insights import write_insights  # noqa: E402
from report_lib.kpis import comparison_totals, compute_kpis, validate_daily  # noqa: E402
from report_lib.periods import parse_period  # noqa: E402
from report_lib.trends import (  # noqa: E402
    best_and_worst_days,
    decompose,
    growth_rates,
    moving_average,
    resample_metric,
    weekday_profile,
)

DAYS = 730
REPEATS = 5
START = pd.Timestamp("2023-01-02")
WEEKDAY_PATTERN = np.array([0.85, 0.9, 0.95, 1.0, 1.15, 1.35, 0.8])


def synthetic_daily(stores: int, days: int = DAYS, seed: int = 7) -> pd.DataFrame:
    """Long-format daily metrics, as load_daily_metrics returns them."""
    rng = np.random.default_rng(seed)
    calendar = pd.date_range(START, periods=days, freq="D")
    t = np.arange(days)
    parts = []
    for store in range(stores):
        base = rng.uniform(2_000, 20_000)
        season = 1 + 0.2 * np.sin(2 * np.pi * (t - 300) / 365.25)
        revenue = base * WEEKDAY_PATTERN[calendar.day_of_week] * season * (1 + 0.0003 * t)
        revenue *= rng.lognormal(0, 0.1, days)
        orders = np.maximum(1, np.round(revenue / rng.uniform(25, 45)))
        returns = revenue * rng.uniform(0.0, 0.05, days)
        cost = revenue * 0.62
        parts.append(
            pd.DataFrame(
                {
                    "store_code": f"S{store:03d}",
                    "day": calendar,
                    "grain": "day",
                    "revenue": revenue,
                    "orders": orders,
                    "units": orders * 2.3,
                    "customers": np.round(orders * 0.7),
                    "cost": cost,
                    "margin": revenue - cost,
                    "returns": returns,
                    "return_units": np.round(returns / 20),
                    "source": "order_lines",
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    closed = (frame["day"].dt.month == 12) & (frame["day"].dt.day == 25)
    return frame[~closed].reset_index(drop=True)


def _median_seconds(action: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _per_store(frames: list[pd.DataFrame], analysis: Callable[[pd.DataFrame], object]) -> Callable[[], object]:
    return lambda: [analysis(frame) for frame in frames]


def run(quick: bool = False) -> list[dict[str, object]]:
    stores = 5 if quick else 50
    daily = synthetic_daily(stores)
    frames = [part for _, part in daily.groupby("store_code", sort=True)]
    period = parse_period("last-month", today=daily["day"].max().date())
    series = [resample_metric(frame, freq="D") for frame in frames]
    kpi_tables = [compute_kpis(frame, period) for frame in frames]
    analyses: list[tuple[str, Callable[[], object], str]] = [
        ("validate_daily", lambda: validate_daily(daily), "all stores in one call"),
        ("compute_kpis (month vs previous, last year)", _per_store(frames, lambda f: compute_kpis(f, period)), ""),
        ("comparison_totals, chain total", lambda: comparison_totals(daily, period), "all stores in one call"),
        ("resample_metric D+W+M", _per_store(frames, _resample_all), ""),
        ("moving_average 7 + growth_rates", lambda: [growth_rates(moving_average(s, 7)) for s in series], "on series"),
        ("decompose (STL, period 7)", lambda: [decompose(s) for s in series], "on series, 730 points"),
        ("weekday_profile + best_and_worst_days", _per_store(frames, _profile_and_extremes), ""),
        ("write_insights", lambda: [write_insights(t, period=period) for t in kpi_tables], "on KPI tables"),
    ]
    rows = []
    for name, action, note in analyses:
        seconds = _median_seconds(action)
        per_store = f"{seconds / stores * 1000:.1f} ms a store"
        rows.append(
            {
                "analysis": name,
                "size": f"{stores} stores x {DAYS} days",
                "seconds": seconds,
                "note": f"{per_store}; {note}" if note else per_store,
            }
        )
    return rows


def _resample_all(frame: pd.DataFrame) -> object:
    return [resample_metric(frame, freq=freq) for freq in ("D", "W", "M")]


def _profile_and_extremes(frame: pd.DataFrame) -> object:
    return weekday_profile(frame), best_and_worst_days(frame)


def main() -> int:
    rows = run(quick="--quick" in sys.argv)
    width = max(len(str(row["analysis"])) for row in rows)
    print(f"{'analysis':<{width}}  {'size':<20}  {'seconds':>8}  note")
    for row in rows:
        print(f"{row['analysis']!s:<{width}}  {row['size']!s:<20}  {row['seconds']:>8.3f}  {row['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
