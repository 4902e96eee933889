"""Forecasts with 80% and 95% intervals, checked by a rolling-origin backtest against seasonal naive.

How a forecast is made (``forecast_series``):
1. The input is validated and put on a regular daily or weekly grid (see report_lib.forecast_input for what is an
   error and what is filled).
2. The history is split for a rolling-origin backtest: ``folds`` test windows of ``horizon`` steps at the end.
3. A few SARIMA orders (one differencing structure per frequency, so the AICs compare like with like) are fitted on
   the data before the first test window; the lowest AIC among the fits that converge and are not explosive wins.
4. The backtest re-uses those parameters on every fold (each fold's history is filtered, not refitted), so no
   parameter has seen any test data. MASE is scaled by the in-sample seasonal naive MAE of each fold's training
   data; seasonal naive is scored on the same folds.
5. The SARIMA forecast is used when it beat seasonal naive and its forecast from the full history is plausible;
   otherwise seasonal naive is, with intervals from its past seasonal changes, and ``note`` says why.

The final forecast filters the whole history with the parameters estimated before the first fold: the model that
was scored is the model that forecasts. ``mean`` is the point forecast; intervals assume normal errors.
Seasonal periods: 7 for daily series, 52 for weekly ones.

Measured (benchmarks/bench_forecast.py, BLAS at one thread, CPU time on a busy 2-core machine): ~0.5 s a store
for 2 years of daily data (3 candidate fits, backtest, intervals), ~0.08 s a Walmart weekly store; 1.7 s for one
store in a fresh process including imports. A plain SARIMAX(1,1,1)(1,0,1,7) refitted per fold took ~2.2 s a store,
failed on 3 of 50 and produced explosive forecasts on others (mean MASE 69 against a median of 1.5): hence the
concentrated scale, the convergence and plausibility checks, and the fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from report_lib.errors import ConfigError, DataValidationError, InsufficientDataError, require_columns
from report_lib.forecast_input import GapPolicy, PreparedSeries, prepare_series, series_from_frame
from report_lib.forecast_models import (
    Z80,
    Z95,
    Candidate,
    Fit,
    Order,
    PointForecast,
    Rejection,
    SeasonalOrder,
    coverage,
    default_candidates,
    implausibility,
    mase,
    sarima_forecast,
    seasonal_naive,
    select_fit,
    single_threaded_blas,
)

log = logging.getLogger(__name__)

DEFAULT_HORIZON = {7: 28, 52: 13}  # four weeks of days, a quarter of weeks
DEFAULT_FOLDS = 3
MIN_TRAINING_POINTS = 56  # eight weeks of days; weekly series need two years (2 × 52) instead
FORECAST_COLUMNS = ("date", "mean", "lo80", "hi80", "lo95", "hi95")
BACKTEST_COLUMNS = ("fold", "cutoff", "mase_model", "mase_naive", "coverage80", "coverage95")


@dataclass(frozen=True, eq=False)
class ForecastResult:
    """A forecast, how it was made and how the method scored in the backtest.

    ``order``/``seasonal_order``/``aic`` describe the SARIMA chosen by AIC (None when none could be fitted), whether
    or not it was used; ``model`` names what produced ``forecast``; ``fallback`` is True when that is seasonal naive.
    ``backtest`` has one row per fold: fold, cutoff (first test date), mase_model, mase_naive, and the share of the
    fold's actual values inside the used method's 80% and 95% intervals (coverage80, coverage95).
    """

    forecast: pd.DataFrame
    model: str
    order: Order | None
    seasonal_order: SeasonalOrder | None
    aic: float | None
    backtest: pd.DataFrame
    mase_model: float
    mase_naive: float
    fallback: bool
    note: str
    candidates: pd.DataFrame  # model, aic, status: every SARIMA tried and why it was or was not chosen
    freq: str
    horizon: int


@dataclass(frozen=True, eq=False)
class _Fold:
    cutoff: pd.Timestamp
    actual: np.ndarray
    naive: PointForecast
    model: PointForecast | None
    mase_naive: float
    mase_model: float
    problem: str | None  # why the model's forecast on this fold was implausible


def limit_blas_threads(threads: int = 1) -> Any:
    """Pin BLAS (OpenBLAS/MKL) to ``threads`` threads in this process; returns threadpoolctl's limiter.

    Use it as ``with limit_blas_threads(): ...`` or call it once at a worker's start. With two worker processes
    each running two BLAS threads on two cores a SARIMAX fit went from ~0.4 s to 4-10 s. Setting
    OPENBLAS_NUM_THREADS=1 before numpy loads (the runner's kernels, benchmarks/run.py) has the same effect.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def forecast_series(
    series: pd.Series,
    *,
    horizon: int | None = None,
    folds: int = DEFAULT_FOLDS,
    min_folds: int | None = None,
    freq: str | None = None,
    gaps: GapPolicy = "auto",
    candidates: Sequence[tuple[Order, SeasonalOrder]] | None = None,
) -> ForecastResult:
    """Forecast ``horizon`` steps of a daily or weekly series (indexed by dates) with 80%/95% intervals.

    Args:
        horizon: steps ahead; default 28 for daily and 13 for weekly series. Each backtest fold is this long.
        folds: rolling-origin backtest folds; the history must hold them plus the minimum training length.
        min_folds: when the history is too short for ``folds``, backtest on as many as it holds, down to this many
            (a young store's report still gets a forecast, on fewer folds, which the note states). Default: ``folds``.
        freq: "D" or "W" / "W-FRI"; inferred from the dates when None.
        gaps: "auto" fills missing days with 0 and refuses missing weeks; "zero" fills both; "error" refuses both.
        candidates: SARIMA orders to choose from by AIC, as ((p, d, q), (P, D, Q, period)); default per frequency.

    BLAS runs at one thread while the models are fitted (see ``single_threaded_blas``); a history that repeats
    exactly every season is forecast by seasonal naive without fitting anything.

    Raises:
        DataValidationError: duplicated dates, NaN values, irregular dates, refused gaps (the message names them).
        InsufficientDataError: too short a history for the horizon and folds (the message says how long is needed).
        ConfigError: a non-positive horizon or number of folds, an unknown freq or gaps policy.
    """
    prepared = prepare_series(series, freq=freq, gaps=gaps)
    steps = _resolve_horizon(horizon, prepared)
    cutoffs = _cutoffs(prepared, steps, folds, folds if min_folds is None else min_folds)
    tried = _resolve_candidates(candidates, prepared.season)
    with single_threaded_blas():
        return _forecast_prepared(prepared, steps, cutoffs, tried)


def _forecast_prepared(
    prepared: PreparedSeries, steps: int, cutoffs: list[int], tried: Sequence[Candidate]
) -> ForecastResult:
    training = prepared.observed[: cutoffs[0]]
    fit, outcomes = (None, []) if _repeats_exactly(training, prepared.season) else select_fit(training, tried)
    scored = [_score_fold(prepared, cutoff, steps, fit) for cutoff in cutoffs]
    mase_model = float(np.mean([f.mase_model for f in scored])) if fit is not None else float("nan")
    mase_naive = float(np.mean([f.mase_naive for f in scored]))
    final_naive = seasonal_naive(prepared.observed, season=prepared.season, horizon=steps)
    used, final_problem = final_naive, None
    if fit is not None and mase_model < mase_naive:
        final_model = sarima_forecast(prepared.observed, fit, steps)
        final_problem = implausibility(final_model, prepared.observed)
        used = final_naive if final_problem else final_model
    use_model = used is not final_naive
    note = _note(prepared, fit, outcomes, scored, mase_model, mase_naive, final_problem, steps)
    log.info("forecast: %s", note)
    return ForecastResult(
        forecast=_forecast_frame(prepared, used, steps),
        model=fit.candidate.describe() if use_model and fit else f"seasonal naive[{prepared.season}]",
        order=fit.candidate.order if fit else None,
        seasonal_order=fit.candidate.seasonal_order if fit else None,
        aic=fit.aic if fit else None,
        backtest=_backtest_frame(scored, use_model=use_model),
        mase_model=mase_model,
        mase_naive=mase_naive,
        fallback=not use_model,
        note=note,
        candidates=_candidates_frame(outcomes, fit),
        freq=prepared.freq,
        horizon=steps,
    )


def forecast_frame(
    df: pd.DataFrame,
    *,
    date_col: str = "day",
    value_col: str = "revenue",
    horizon: int | None = None,
    folds: int = DEFAULT_FOLDS,
    freq: str | None = None,
    gaps: GapPolicy = "auto",
    candidates: Sequence[tuple[Order, SeasonalOrder]] | None = None,
) -> ForecastResult:
    """``forecast_series`` on one series held in a long frame (one row per date)."""
    series = series_from_frame(df, date_col=date_col, value_col=value_col)
    return forecast_series(series, horizon=horizon, folds=folds, freq=freq, gaps=gaps, candidates=candidates)


def forecast_stores(
    df: pd.DataFrame,
    *,
    id_col: str = "store_code",
    date_col: str = "day",
    value_col: str = "revenue",
    horizon: int | None = None,
    folds: int = DEFAULT_FOLDS,
    freq: str | None = None,
    gaps: GapPolicy = "auto",
) -> dict[str, ForecastResult]:
    """One ``forecast_frame`` per value of ``id_col``; an input error names the store it came from."""
    require_columns(df.columns, [id_col, date_col, value_col], what="Forecast input")
    results: dict[str, ForecastResult] = {}
    for key, group in df.groupby(id_col, sort=True):
        code = str(key)
        try:
            results[code] = forecast_frame(
                group, date_col=date_col, value_col=value_col, horizon=horizon, folds=folds, freq=freq, gaps=gaps
            )
        except DataValidationError as exc:
            raise type(exc)(
                f"Store {code!r}: {exc}", missing_columns=exc.missing_columns, details={**exc.details, id_col: code}
            ) from exc
    return results


def summarise_backtests(results: Mapping[str, ForecastResult], *, id_col: str = "store_code") -> pd.DataFrame:
    """One row per series: the model used, the backtest MASE of SARIMA and of seasonal naive, fallback, note."""
    rows = [
        {
            id_col: key,
            "model": result.model,
            "mase_model": result.mase_model,
            "mase_naive": result.mase_naive,
            "fallback": result.fallback,
            "note": result.note,
        }
        for key, result in results.items()
    ]
    return pd.DataFrame(rows, columns=[id_col, "model", "mase_model", "mase_naive", "fallback", "note"])


def _resolve_horizon(horizon: int | None, prepared: PreparedSeries) -> int:
    if horizon is None:
        return DEFAULT_HORIZON[prepared.season]
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(f"horizon is {horizon!r}; expected a whole number of {prepared.unit} ahead, at least 1")
    return int(horizon)


def _cutoffs(prepared: PreparedSeries, horizon: int, folds: int, min_folds: int) -> list[int]:
    """Positions of each fold's first test point: ``folds`` folds, or as many as the history holds down to
    ``min_folds``; the first fold keeps the minimum training length."""
    for name, value in (("folds", folds), ("min_folds", min_folds)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{name} is {value!r}; expected a whole number of backtest folds, at least 1")
    if min_folds > folds:
        raise ConfigError(f"min_folds ({min_folds}) is more than folds ({folds}); expected at most as many")
    minimum = max(2 * prepared.season, MIN_TRAINING_POINTS)
    have = len(prepared.observed)
    folds = min(folds, (have - minimum) // horizon)
    if folds < min_folds:
        needed = minimum + min_folds * horizon
        raise InsufficientDataError(
            f"Forecasting {horizon} {prepared.unit} ahead with a {min_folds}-fold backtest needs at least {needed} "
            f"{prepared.unit} of history ({minimum} to fit on + {min_folds} × {horizon} to test on); the series has "
            f"{have}. Use a shorter horizon, fewer folds, or a longer history.",
            details={"needed": needed, "points": have, "horizon": horizon, "folds": min_folds},
        )
    return [have - (folds - k) * horizon for k in range(folds)]


def _resolve_candidates(candidates: Sequence[tuple[Order, SeasonalOrder]] | None, season: int) -> tuple[Candidate, ...]:
    if candidates is None:
        return default_candidates(season)
    try:
        resolved = tuple(
            Candidate((int(order[0]), int(order[1]), int(order[2])), (int(so[0]), int(so[1]), int(so[2]), int(so[3])))
            for order, so in candidates
        )
    except (TypeError, ValueError, IndexError) as exc:
        raise ConfigError(
            f"candidates is {candidates!r}; expected pairs ((p, d, q), (P, D, Q, period)) of whole numbers"
        ) from exc
    if not resolved:
        raise ConfigError("candidates is empty; pass at least one ((p, d, q), (P, D, Q, period)) or None")
    return resolved


def _repeats_exactly(values: np.ndarray, season: int) -> bool:
    """True when every value equals the one a season earlier: seasonal naive is exact, SARIMA fits degenerate."""
    tolerance = 1e-9 * max(1.0, float(np.abs(values).max()))
    return bool(np.all(np.abs(values[season:] - values[:-season]) <= tolerance))


def _score_fold(prepared: PreparedSeries, cutoff: int, horizon: int, fit: Fit | None) -> _Fold:
    training = prepared.observed[:cutoff]
    actual = prepared.observed[cutoff : cutoff + horizon]
    naive = seasonal_naive(training, season=prepared.season, horizon=horizon)
    mase_naive = mase(actual, naive.mean, training=training, season=prepared.season)
    model, problem, mase_model = None, None, float("nan")
    if fit is not None:
        model = sarima_forecast(training, fit, horizon)
        problem = implausibility(model, training)
        if problem is None:
            mase_model = mase(actual, model.mean, training=training, season=prepared.season)
        else:
            mase_model = float("inf")
    cutoff_date = pd.Timestamp(prepared.dates[cutoff])
    return _Fold(cutoff_date, actual, naive, model, mase_naive, mase_model, problem)


def _forecast_frame(prepared: PreparedSeries, forecast: PointForecast, horizon: int) -> pd.DataFrame:
    dates = pd.date_range(prepared.dates[-1], periods=horizon + 1, freq=prepared.freq)[1:]
    lo80, hi80 = forecast.bounds(Z80)
    lo95, hi95 = forecast.bounds(Z95)
    columns = (dates, forecast.mean, lo80, hi80, lo95, hi95)
    return pd.DataFrame(dict(zip(FORECAST_COLUMNS, columns, strict=True)))


def _backtest_frame(scored: Sequence[_Fold], *, use_model: bool) -> pd.DataFrame:
    rows = []
    for number, fold in enumerate(scored, start=1):
        used = fold.model if use_model and fold.model is not None else fold.naive
        rows.append(
            (
                number,
                fold.cutoff,
                fold.mase_model,
                fold.mase_naive,
                coverage(fold.actual, used, Z80),
                coverage(fold.actual, used, Z95),
            )
        )
    frame = pd.DataFrame(rows, columns=list(BACKTEST_COLUMNS))
    return frame.astype({"fold": "int64", "cutoff": "datetime64[ns]"})


def _candidates_frame(outcomes: Sequence[Fit | Rejection], chosen: Fit | None) -> pd.DataFrame:
    rows = [
        (
            outcome.candidate.describe(),
            outcome.aic if isinstance(outcome, Fit) else float("nan"),
            ("chosen by AIC" if outcome is chosen else "fitted")
            if isinstance(outcome, Fit)
            else f"rejected: {outcome.reason}",
        )
        for outcome in outcomes
    ]
    return pd.DataFrame(rows, columns=["model", "aic", "status"])


def _note(
    prepared: PreparedSeries,
    fit: Fit | None,
    outcomes: Sequence[Fit | Rejection],
    scored: Sequence[_Fold],
    mase_model: float,
    mase_naive: float,
    final_problem: str | None,
    horizon: int,
) -> str:
    """The plain sentences a report shows next to the forecast: what was used, and why."""
    folds = f"{len(scored)} fold{'s' if len(scored) > 1 else ''}"
    scores = f"MASE {mase_model:.2f} vs {mase_naive:.2f}, {folds} of {horizon} {prepared.unit}"
    if fit is None and not outcomes:
        sentences = [
            f"Seasonal naive used: the history repeats exactly every {prepared.season} {prepared.unit}, which "
            f"seasonal naive forecasts exactly (MASE {mase_naive:.2f} over {folds}); no SARIMA was fitted."
        ]
    elif fit is None:
        sentences = ["Seasonal naive used: no SARIMA candidate could be fitted."]
    elif not mase_model < mase_naive:
        name = fit.candidate.describe()
        sentences = [f"Seasonal naive used: {name} lost to it in the backtest ({scores})."]
        sentences += [f"Fold {n}: {f.problem}." for n, f in enumerate(scored, start=1) if f.problem]
    elif final_problem is not None:
        name = fit.candidate.describe()
        sentences = [f"Seasonal naive used: {name} won the backtest ({scores}) but {final_problem}."]
    else:
        name = fit.candidate.describe()
        sentences = [f"{name}, chosen by AIC among {len(outcomes)} candidates, beat seasonal naive ({scores})."]
    rejected = [o for o in outcomes if isinstance(o, Rejection)]
    if rejected:
        sentences.append("Rejected: " + "; ".join(f"{o.candidate.describe()} {o.reason}" for o in rejected) + ".")
    if prepared.filled:
        shown = ", ".join(f"{d:%Y-%m-%d}" for d in prepared.filled[:5])
        more = f" and {len(prepared.filled) - 5} more" if len(prepared.filled) > 5 else ""
        count = len(prepared.filled)
        what = f"{count} missing {prepared.unit} were" if count > 1 else f"1 missing {prepared.unit[:-1]} was"
        sentences.append(f"{what} filled with 0 ({shown}{more}).")
    return " ".join(sentences)
