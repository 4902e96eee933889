"""The models behind report_lib.forecast: SARIMA candidates (statsmodels), seasonal naive, and MASE.

Every model returns a ``PointForecast`` (mean and standard deviation per step), so intervals are built the same way
for all of them. SARIMA candidates are fitted on the differenced series (``simple_differencing``: a few states
instead of 55 for a weekly seasonal difference, same likelihood), then filtered with the undifferenced model, which
integrates the forecast and its variance. Fits that fail, do not converge or are explosive are rejected, with the
reason, instead of being used; statsmodels' warnings never leak to the caller.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.statespace.sarimax import SARIMAX

log = logging.getLogger(__name__)

Order = tuple[int, int, int]
SeasonalOrder = tuple[int, int, int, int]

MAX_ITERATIONS = 100
# A forecast is implausible when it leaves the history's range by more than this many ranges.
PLAUSIBLE_RANGES = 1.0
Z80 = 1.2815515655446004  # scipy.stats.norm.ppf(0.90)
Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


@dataclass(frozen=True)
class Candidate:
    """A SARIMA order to try: (p, d, q) and (P, D, Q, period)."""

    order: Order
    seasonal_order: SeasonalOrder

    def describe(self) -> str:
        p, d, q = self.order
        big_p, big_d, big_q, period = self.seasonal_order
        return f"SARIMA({p},{d},{q})({big_p},{big_d},{big_q})[{period}]"


# One differencing structure per frequency, so the AICs compare like with like, and a few AR/MA orders around it.
# Measured (benchmarks/bench_forecast.py and the 45 Walmart stores): larger grids cost a fit each (~0.25 s daily)
# and changed backtest MASE by under 2%; models without the weekly seasonal AR/MA terms, or with a seasonal
# difference, lost to these on the synthetic daily stores; on weekly data the seasonal difference
# (0,1,0)[52] with a non-seasonal difference beat seasonal AR/MA and Fourier terms (MASE 0.71 vs 0.84-1.25).
DAILY_CANDIDATES = (
    Candidate((1, 1, 1), (1, 0, 1, 7)),
    Candidate((0, 1, 2), (1, 0, 1, 7)),
    Candidate((1, 1, 0), (1, 0, 1, 7)),
)
WEEKLY_CANDIDATES = (
    Candidate((0, 1, 1), (0, 1, 0, 52)),
    Candidate((1, 1, 0), (0, 1, 0, 52)),
    Candidate((2, 1, 0), (0, 1, 0, 52)),
)


@dataclass(frozen=True, eq=False)
class Fit:
    """A SARIMA candidate's estimated parameters (named, as statsmodels names them) and its AIC."""

    candidate: Candidate
    params: np.ndarray
    param_names: tuple[str, ...]
    aic: float


@dataclass(frozen=True)
class Rejection:
    candidate: Candidate
    reason: str


@dataclass(frozen=True, eq=False)
class PointForecast:
    mean: np.ndarray
    sd: np.ndarray

    def bounds(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        return self.mean - z * self.sd, self.mean + z * self.sd


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController  # scans the loaded BLAS libraries once (~6 ms)

    return ThreadpoolController()


def single_threaded_blas() -> Any:
    """A context in which BLAS runs one thread: state-space filters multiply tiny matrices, where extra threads only
    contend (a degenerate fit measured 0.15 s of CPU at one thread, 1.6 s at two on a busy 2-core machine).
    The limit is process-wide while the context is open."""
    return _blas_controller().limit(limits=1, user_api="blas")


def default_candidates(season: int) -> tuple[Candidate, ...]:
    return DAILY_CANDIDATES if season == 7 else WEEKLY_CANDIDATES


def _model(values: np.ndarray, candidate: Candidate, *, simple_differencing: bool) -> SARIMAX:
    return SARIMAX(
        values,
        order=candidate.order,
        seasonal_order=candidate.seasonal_order,
        simple_differencing=simple_differencing,
        concentrate_scale=True,
    )


def fit_candidate(values: np.ndarray, candidate: Candidate, *, warm: Fit | None = None) -> Fit | Rejection:
    """Estimate ``candidate`` on ``values``; a Rejection says why it cannot be used."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = _model(values, candidate, simple_differencing=True)
            start = _start_params(model.param_names, warm)
            result = model.fit(start_params=start, disp=False, maxiter=MAX_ITERATIONS, cov_type="none", low_memory=True)
    except (np.linalg.LinAlgError, ValueError, IndexError, OverflowError) as exc:
        return Rejection(candidate, f"failed to fit ({type(exc).__name__}: {exc})")
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        return Rejection(candidate, f"did not converge in {MAX_ITERATIONS} iterations")
    for w in caught:
        log.debug("%s: %s", candidate.describe(), w.message)
    params = np.asarray(result.params, dtype="float64")
    aic = float(result.aic)
    if not (np.isfinite(params).all() and math.isfinite(aic)):
        return Rejection(candidate, "non-finite likelihood or parameters")
    roots = np.asarray(result.arroots)
    if roots.size and np.abs(roots).min() < 1.0:
        return Rejection(candidate, "explosive (autoregressive root inside the unit circle)")
    return Fit(candidate, params, tuple(model.param_names), aic)


def _start_params(names: Sequence[str], warm: Fit | None) -> np.ndarray | None:
    """Start from a neighbouring candidate's estimates where the parameters share a name, zero elsewhere."""
    if warm is None:
        return None
    known = dict(zip(warm.param_names, warm.params, strict=True))
    return np.array([known.get(name, 0.0) for name in names], dtype="float64")


def select_fit(values: np.ndarray, candidates: Sequence[Candidate]) -> tuple[Fit | None, list[Fit | Rejection]]:
    """Fit every candidate (each warm-started from the best so far); the lowest AIC wins."""
    outcomes: list[Fit | Rejection] = []
    best: Fit | None = None
    for candidate in candidates:
        outcome = fit_candidate(values, candidate, warm=best)
        outcomes.append(outcome)
        if isinstance(outcome, Fit) and (best is None or outcome.aic < best.aic):
            best = outcome
    return best, outcomes


def sarima_forecast(values: np.ndarray, fit: Fit, horizon: int) -> PointForecast:
    """Filter ``values`` with the fitted parameters (no re-estimation) and forecast ``horizon`` steps."""
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            model = _model(values, fit.candidate, simple_differencing=False)
            result = model.filter(fit.params, cov_type="none")
            prediction = result.get_forecast(horizon)
            mean = np.asarray(prediction.predicted_mean, dtype="float64")
            sd = np.sqrt(np.asarray(prediction.var_pred_mean, dtype="float64"))
    except (np.linalg.LinAlgError, ValueError) as exc:  # NaN makes ``implausibility`` reject it, with a reason
        log.debug("%s: filtering failed: %s", fit.candidate.describe(), exc)
        mean = sd = np.full(horizon, np.nan)
    return PointForecast(mean, sd)


def implausibility(forecast: PointForecast, history: np.ndarray) -> str | None:
    """Why a forecast cannot be right (non-finite, or far outside the history's range), or None."""
    if not (np.isfinite(forecast.mean).all() and np.isfinite(forecast.sd).all()):
        return "the forecast has non-finite values"
    low, high = float(history.min()), float(history.max())
    spread = high - low if high > low else max(abs(high), 1.0)  # a constant history still allows some room
    margin = PLAUSIBLE_RANGES * spread
    if forecast.mean.min() < low - margin or forecast.mean.max() > high + margin:
        return f"the forecast leaves the history's range ({low:,.0f} to {high:,.0f}) by more than {margin:,.0f}"
    return None


def seasonal_naive(values: np.ndarray, *, season: int, horizon: int) -> PointForecast:
    """Each step repeats the value one season earlier; the spread of past seasonal changes gives the intervals.

    The standard deviation grows with the square root of the number of seasons ahead (a seasonal random walk).
    """
    steps = np.arange(horizon)
    mean = values[-season:][steps % season]
    changes = values[season:] - values[:-season]
    sigma = float(np.sqrt(np.mean(changes**2))) if changes.size else 0.0
    sd = sigma * np.sqrt(steps // season + 1.0)
    return PointForecast(mean.astype("float64"), sd)


def mase(actual: np.ndarray, predicted: np.ndarray, *, training: np.ndarray, season: int) -> float:
    """Mean absolute error scaled by the in-sample seasonal naive MAE of ``training``.

    When the training data repeat exactly every season (scale 0), the one-step naive MAE scales instead; when that
    is 0 too (constant training data), MASE is 0 for a perfect forecast and infinite otherwise.
    """
    error = float(np.mean(np.abs(actual - predicted)))
    scale = float(np.mean(np.abs(training[season:] - training[:-season])))
    if scale == 0.0:
        scale = float(np.mean(np.abs(np.diff(training))))
    if scale == 0.0:
        return 0.0 if error == 0.0 else math.inf
    return error / scale


def coverage(actual: np.ndarray, forecast: PointForecast, z: float) -> float:
    """Share of ``actual`` inside the forecast's interval of half-width ``z`` standard deviations."""
    low, high = forecast.bounds(z)
    return float(np.mean((actual >= low) & (actual <= high)))
