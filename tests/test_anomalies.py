import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, select

from report_lib.anomalies import FLAG_COLUMNS, DetectionScore, detect_anomalies, score_detection, severity_of
from report_lib.errors import DataValidationError, InsufficientDataError
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.loaders.daily import load_daily_metrics
from report_lib.warehouse.schema import detected_anomalies, planted_anomalies, stores

# A strong weekly pattern (Monday first) and a small deterministic wobble whose period (5) is not the week's.
PATTERN = np.array([100, 100, 110, 120, 160, 300, 60.0])
WOBBLE = np.array([0.02, -0.01, 0.0, 0.015, -0.02])


def weekly_totals(values: list[float], *, store: str = "W", start: str = "2024-01-05") -> pd.DataFrame:
    """Weekly rows (no weekday step), one per value, 7 days apart."""
    days = pd.date_range(start, periods=len(values), freq="7D")
    return pd.DataFrame({"store_code": store, "day": days, "grain": "week", "revenue": np.array(values, float)})


def daily_series(weeks: int = 8, *, store: str = "S", start: str = "2024-01-01", phase: int = 0) -> pd.DataFrame:
    """Daily revenue with the weekly PATTERN times (1 + WOBBLE), 10 orders a day."""
    days = pd.date_range(start, periods=7 * weeks, freq="D")
    step = np.arange(len(days)) + phase
    revenue = PATTERN[days.day_of_week] * (1 + WOBBLE[step % len(WOBBLE)])
    return pd.DataFrame({"store_code": store, "day": days, "revenue": revenue, "orders": 10.0})


# --- known answers ---


def test_modified_z_score_hand_computed() -> None:
    # median 12.5; |x - median| = 2.5 1.5 0.5 0.5 1.5 17.5 -> MAD 1.5; z(30) = 0.6745 * 17.5 / 1.5
    # (the default 91-week window is longer than the series: the whole series is the baseline)
    flags = detect_anomalies(weekly_totals([10, 11, 12, 13, 14, 30]), transform="none", min_periods=5)
    assert list(flags.columns) == list(FLAG_COLUMNS)
    assert len(flags) == 1
    row = flags.iloc[0]
    assert row["day"] == pd.Timestamp("2024-01-05") + pd.Timedelta(days=35)
    assert row["score"] == pytest.approx(0.6745 * 17.5 / 1.5)
    assert row["expected"] == pytest.approx(12.5)
    assert row["value"] == 30
    assert (row["direction"], row["severity"], row["method"], row["metric"]) == ("up", "high", "robust", "revenue")


def test_square_root_transform_hand_computed() -> None:
    # the default transform scores sqrt(x): median of sqrt(10..14, 30) and the MAD around it
    roots = np.sqrt([10, 11, 12, 13, 14, 30])
    median = np.median(roots)
    mad = np.median(np.abs(roots - median))
    flags = detect_anomalies(weekly_totals([10, 11, 12, 13, 14, 30]), min_periods=5)
    assert len(flags) == 1
    assert flags.loc[0, "score"] == pytest.approx(0.6745 * (roots[-1] - median) / mad)
    assert flags.loc[0, "expected"] == pytest.approx(median**2)


def test_mad_zero_falls_back_to_mean_absolute_deviation() -> None:
    # median 5, MAD 0; meanAD = 4/7; z(9) = 0.7979 * 4 / (4/7)
    flags = detect_anomalies(weekly_totals([5, 5, 5, 5, 5, 5, 9]), transform="none", min_periods=5)
    assert len(flags) == 1
    assert flags.loc[0, "score"] == pytest.approx(0.7979 * 7)
    assert flags.loc[0, "severity"] == "high"


def test_all_equal_values_score_zero() -> None:
    assert detect_anomalies(weekly_totals([5.0] * 8), min_periods=5).empty


def test_rolling_z_score_excludes_the_current_period() -> None:
    # at the last week: previous four 10 12 10 12 -> mean 11, sample std sqrt(4/3); z = 9 / sqrt(4/3)
    flags = detect_anomalies(weekly_totals([10, 12, 10, 12, 20]), method="rolling", window=4, min_periods=5)
    assert len(flags) == 1
    assert flags.loc[0, "score"] == pytest.approx(9 / np.sqrt(4 / 3))
    assert flags.loc[0, "expected"] == pytest.approx(11)
    assert flags.loc[0, "severity"] == "extreme"  # 7.79 / 3 >= 2.5


def test_rolling_window_with_no_spread_leaves_the_period_unscored() -> None:
    assert detect_anomalies(weekly_totals([10, 10, 10, 10, 50]), method="rolling", window=4, min_periods=5).empty


@pytest.mark.parametrize(
    ("score", "threshold", "severity"),
    [
        (3.5, 3.5, "moderate"),
        (-5.2, 3.5, "moderate"),
        (5.25, 3.5, "high"),
        (-8.74, 3.5, "high"),
        (8.75, 3.5, "extreme"),
        (3.0, 3.0, "moderate"),
        (4.5, 3.0, "high"),
        (7.5, 3.0, "extreme"),
        (2.9, 3.0, ""),
    ],
)
def test_severity_bands(score: float, threshold: float, severity: str) -> None:
    assert severity_of(score, threshold) == severity


# --- weekday seasonality ---


@pytest.mark.parametrize("method", ["robust", "rolling"])
def test_strong_weekly_pattern_without_anomaly_gives_no_flags(method: str) -> None:
    assert detect_anomalies(daily_series(), method=method).empty  # type: ignore[arg-type]


def test_without_weekday_removal_the_pattern_itself_would_be_flagged() -> None:
    # the same values declared weekly (no weekday step) make every Saturday an outlier: the step matters
    series = daily_series().assign(grain="week", day=pd.date_range("2000-01-07", periods=56, freq="7D"))
    assert len(detect_anomalies(series)) >= 8


@pytest.mark.parametrize("method", ["robust", "rolling"])
def test_one_planted_spike_is_flagged_up(method: str) -> None:
    series = daily_series()
    spike_day = pd.Timestamp("2024-02-14")  # a Wednesday
    series.loc[series["day"] == spike_day, "revenue"] *= 2
    flags = detect_anomalies(series, method=method)  # type: ignore[arg-type]
    assert list(flags["day"]) == [spike_day]
    assert flags.loc[0, "direction"] == "up"
    assert flags.loc[0, "value"] == pytest.approx(2 * 110 * (1 + WOBBLE[44 % 5]))
    assert flags.loc[0, "expected"] == pytest.approx(110, rel=0.03)


def test_a_drop_is_flagged_down() -> None:
    series = daily_series()
    series.loc[series["day"] == pd.Timestamp("2024-02-10"), "revenue"] *= 0.3  # a Saturday
    flags = detect_anomalies(series)
    assert list(zip(flags["day"], flags["direction"], strict=True)) == [(pd.Timestamp("2024-02-10"), "down")]


def test_square_roots_are_weighted_by_the_weekday_volume_hand_computed() -> None:
    # one store (no peers); a window over twice the series' length: the level is the whole series' median.
    # sqrt(x / f) has variance ~1/f when x is a count or a sum of baskets: deviations are weighted by sqrt(f / mean f)
    series = daily_series()
    series.loc[40, "revenue"] *= 1.44  # Saturday 2024-02-10, weekday median ~300
    series.loc[41, "revenue"] *= 1.44  # Sunday 2024-02-11, weekday median ~60
    weekday_median = series.groupby(series["day"].dt.day_of_week)["revenue"].transform("median")
    root = np.sqrt(series["revenue"] / weekday_median)
    weighted = np.sqrt(weekday_median / weekday_median.mean()) * (root - root.median())
    center = weighted.median()
    mad = (weighted - center).abs().median()
    flags = detect_anomalies(series, threshold=1e-6, window=112).set_index("day")
    assert len(flags) >= 50  # every period but those scoring exactly 0
    expected_score = (0.6745 * (weighted - center) / mad).set_axis(series["day"])
    weight = np.sqrt(weekday_median / weekday_median.mean())
    expected_value = (weekday_median * (root.median() + center / weight) ** 2).set_axis(series["day"])
    assert flags["score"].to_numpy() == pytest.approx(expected_score[flags.index].to_numpy())
    assert flags["expected"].to_numpy() == pytest.approx(expected_value[flags.index].to_numpy())
    # the same relative bump counts about sqrt(300 / 60) = 2.2 times more on the busy Saturday than on the quiet
    # Sunday (unweighted square roots, as before: 1.14)
    saturday, sunday = flags.loc[pd.Timestamp("2024-02-10"), "score"], flags.loc[pd.Timestamp("2024-02-11"), "score"]
    assert 2 < saturday / sunday < 3


# --- the chain: days every store shares are not a store's anomaly ---


def chain(stores: int, *, spike: dict[str, float]) -> pd.DataFrame:
    """``stores`` stores with the same pattern (each scaled), revenue times ``spike[store]`` on 2024-02-14."""
    frames = []
    for number in range(stores):
        code = f"S{number}"
        series = daily_series(store=code, phase=number).assign(revenue=lambda f, k=number: f["revenue"] * (1 + k / 10))
        series.loc[series["day"] == pd.Timestamp("2024-02-14"), "revenue"] *= spike.get(code, 1.0)
        frames.append(series)
    return pd.concat(frames, ignore_index=True)


def test_a_day_the_whole_chain_shares_is_not_flagged() -> None:
    everyone = chain(4, spike={f"S{k}": 1.8 for k in range(4)})  # Black Friday in every store
    assert detect_anomalies(everyone).empty
    alone = detect_anomalies(everyone, peers=False)
    assert list(alone["store_code"]) == ["S0", "S1", "S2", "S3"]


def test_one_store_out_of_line_is_flagged_and_its_peers_are_not() -> None:
    flags = detect_anomalies(chain(5, spike={"S2": 2.5, "S4": 0.2}))
    assert list(zip(flags["store_code"], flags["direction"], strict=True)) == [("S2", "up"), ("S4", "down")]
    assert set(flags["day"]) == {pd.Timestamp("2024-02-14")}


def test_identical_stores_leave_only_rounding_noise_which_is_not_scored() -> None:
    same = pd.concat([daily_series(store=f"S{k}") for k in range(4)], ignore_index=True)
    assert detect_anomalies(same).empty


def test_with_three_stores_there_is_no_chain_adjustment() -> None:
    flags = detect_anomalies(chain(3, spike={"S0": 1.8, "S1": 1.8, "S2": 1.8}))
    assert len(flags) == 3  # too few peers for a median: each store is judged on its own


# --- awkward but valid input (documented handling) ---


def test_closed_day_is_not_reported_as_a_drop() -> None:
    series = daily_series()
    christmas = series["day"] == pd.Timestamp("2024-02-14")
    closed = series.assign(
        revenue=series["revenue"].where(~christmas, 0.0), orders=series["orders"].where(~christmas, 0)
    )
    for method in ("robust", "rolling"):
        assert detect_anomalies(closed, method=method).empty  # type: ignore[arg-type]
    open_but_empty = series.assign(revenue=series["revenue"].where(~christmas, 0.0))  # 10 orders: a real drop
    flags = detect_anomalies(open_but_empty)
    assert list(zip(flags["day"], flags["direction"], strict=True)) == [(pd.Timestamp("2024-02-14"), "down")]


def test_gaps_and_nan_are_missing_not_zero() -> None:
    series = daily_series()
    gap = series["day"].between("2024-01-20", "2024-01-26")
    with_gap = series[~gap].assign(revenue=lambda f: f["revenue"].where(f["day"] != pd.Timestamp("2024-02-01")))
    for method in ("robust", "rolling"):
        assert detect_anomalies(with_gap, method=method).empty  # type: ignore[arg-type]


def test_unsorted_input_gives_the_sorted_answer() -> None:
    series = daily_series()
    series.loc[series["day"] == pd.Timestamp("2024-02-14"), "revenue"] *= 2
    shuffled = series.sample(frac=1, random_state=3)
    pd.testing.assert_frame_equal(detect_anomalies(shuffled), detect_anomalies(series))


def test_several_stores_and_custom_column_names() -> None:
    one, two = daily_series(store="A"), daily_series(store="B")
    two.loc[two["day"] == pd.Timestamp("2024-01-31"), "revenue"] *= 3
    both = pd.concat([one, two]).rename(columns={"store_code": "shop", "day": "date", "revenue": "sales"})
    flags = detect_anomalies(both, metric="revenue", value_col="sales", id_col="shop", date_col="date")
    assert list(zip(flags["store_code"], flags["day"], strict=True)) == [("B", pd.Timestamp("2024-01-31"))]


def test_negative_values_are_scored() -> None:
    series = daily_series()
    series.loc[series["day"] == pd.Timestamp("2024-02-14"), "revenue"] = -50.0  # returns beat sales
    flags = detect_anomalies(series)
    assert list(flags["direction"]) == ["down"]
    assert flags.loc[0, "value"] == -50


@pytest.mark.parametrize("method", ["robust", "rolling"])
def test_all_zero_metric_gives_no_flags(method: str) -> None:
    assert detect_anomalies(daily_series().assign(revenue=0.0), method=method).empty  # type: ignore[arg-type]


def test_input_is_not_mutated() -> None:
    series = daily_series()
    before = series.copy()
    detect_anomalies(series)
    pd.testing.assert_frame_equal(series, before)


def test_weekly_grain_is_inferred_without_a_grain_column() -> None:
    values = [100.0 + (i % 3) for i in range(20)]
    values[12] = 300
    flags = detect_anomalies(weekly_totals(values).drop(columns="grain"))
    assert list(flags["day"]) == [pd.Timestamp("2024-01-05") + pd.Timedelta(weeks=12)]


def test_a_store_with_too_little_history_is_skipped_when_others_have_enough() -> None:
    short = daily_series(weeks=1, store="NEW")
    flags = detect_anomalies(pd.concat([daily_series(), short]))
    assert flags.empty


# --- bad input ---


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (daily_series().drop(columns="revenue"), "missing columns"),
        (pd.concat([daily_series(), daily_series().iloc[[3]]]), "repeat the \\(store, day\\)"),
        (daily_series().assign(revenue=np.inf), "infinite"),
        (daily_series().assign(revenue="x"), "must hold dates and 'revenue' numbers"),
        (daily_series().assign(grain=["day"] * 55 + ["week"]), "both daily and weekly"),
        (daily_series().assign(grain="month"), "expected 'day' or 'week'"),
        (weekly_totals([1.0] * 20).assign(day=lambda f: f["day"] + pd.to_timedelta(f.index % 2, "D")), "7 days apart"),
    ],
)
def test_bad_input_is_refused(frame: pd.DataFrame, match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        detect_anomalies(frame)


@pytest.mark.parametrize(
    "frame",
    [daily_series().iloc[0:0], daily_series().iloc[[0]], daily_series().assign(orders=0.0)],
    ids=["empty", "one day", "always closed"],
)
def test_too_little_data_says_so(frame: pd.DataFrame) -> None:
    with pytest.raises(InsufficientDataError, match="at least 14 periods"):
        detect_anomalies(frame)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"method": "iforest"}, "method is 'iforest'"),
        ({"threshold": 0}, "positive threshold"),
        ({"window": 2}, "at least 3 periods"),
        ({"transform": "log"}, "transform 'log'"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        detect_anomalies(daily_series(), **options)  # type: ignore[arg-type]


# --- scoring and storing ---


def test_score_detection_known_counts() -> None:
    d = pd.Timestamp
    flags = pd.DataFrame({"store_code": ["A", "A", "B"], "day": [d("2024-01-01"), d("2024-01-02"), d("2024-01-03")]})
    truth = pd.DataFrame({"store_code": ["A", "B", "B"], "day": ["2024-01-01", "2024-01-03", "2024-01-04"]})
    assert score_detection(flags, truth) == {"recall": 2 / 3, "precision": 2 / 3, "tp": 2, "fp": 1, "fn": 1}
    empty = score_detection(flags.iloc[0:0], truth)
    assert (empty["tp"], empty["fn"], empty["recall"]) == (0, 3, 0.0)
    assert np.isnan(empty["precision"])


def test_flags_can_be_stored_in_detected_anomalies(sqlite_warehouse: Engine) -> None:
    series = daily_series()
    series.loc[series["day"] == pd.Timestamp("2024-02-14"), "revenue"] *= 2
    flags = detect_anomalies(series)
    stored = flags.drop(columns="expected").assign(detected_at=dt.datetime(2024, 3, 1))
    with sqlite_warehouse.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": ["S"], "name": ["Store"]}))
        insert_frame(conn, detected_anomalies, stored)
        rows = conn.execute(select(detected_anomalies.c.day, detected_anomalies.c.direction)).all()
    assert rows == [(dt.date(2024, 2, 14), "up")]


def test_flags_round_trip_through_save_anomalies(warehouse: Engine) -> None:
    results = pytest.importorskip("report_lib.warehouse.results")
    series = daily_series()
    series.loc[series["day"] == pd.Timestamp("2024-02-14"), "revenue"] *= 2
    flags = detect_anomalies(series)
    with warehouse.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": ["S"], "name": ["Store"]}))
    assert results.save_anomalies(warehouse, flags, detected_at=dt.datetime(2024, 3, 1)) == 1
    stored = results.load_anomalies(warehouse, store_code="S")
    assert list(stored["day"]) == [pd.Timestamp("2024-02-14")]
    assert stored.loc[0, "score"] == pytest.approx(flags.loc[0, "score"])
    assert (stored.loc[0, "method"], stored.loc[0, "severity"]) == ("robust", flags.loc[0, "severity"])


# --- the demo warehouse's planted anomalies (ground truth) ---

# A realistic size (~540k order lines; generation ~5-10 s). Seed 42 was kept out of the measurements that chose the
# method (seeds 1-7 at 10 x 730 days, 1-6 at this size).
DEMO = {"stores": 10, "days": 365, "seed": 42, "end": dt.date(2024, 6, 30)}


@pytest.fixture(scope="module")
def demo_scores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DetectionScore]:
    """Default method on the demo's daily revenue, scored against planted_anomalies."""
    demo = pytest.importorskip("report_lib.warehouse.demo")
    refresh = pytest.importorskip("report_lib.warehouse.refresh")
    engine = create_warehouse_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'warehouse.db'}")
    ensure_schema(engine)
    demo.generate_demo(engine, **DEMO)
    refresh.refresh_daily_metrics(engine, full=True)
    daily = load_daily_metrics(engine)
    with engine.connect() as conn:
        truth = pd.DataFrame(conn.execute(select(planted_anomalies.c.store_code, planted_anomalies.c.day)).all())
    engine.dispose()
    assert len(truth) >= DEMO["stores"]
    yield score_detection(detect_anomalies(daily), truth)


def test_demo_planted_anomalies_are_found(demo_scores: DetectionScore) -> None:
    """Recall >= 0.9 and precision >= 0.8 on this seed (1.00 and 1.00 when written; 1.00 and 0.86 before the weekday
    weighting).

    Seeds 1-6 at this size: recall 0.98, precision 0.89 pooled; per seed precision 0.81-1.00. At 10 x 730 days
    precision is lower (0.72 pooled over seeds 1-7): see report_lib.anomalies and benchmarks/bench_anomalies_margins.py.
    A change to the demo generator's noise can move this seed across the line: re-measure over the seeds before
    loosening anything.
    """
    assert demo_scores["recall"] >= 0.9, demo_scores
    assert demo_scores["precision"] >= 0.8, demo_scores


# --- real aggregate-only data: the Walmart weekly file ---


@pytest.mark.shared_data
def test_walmart_weekly_totals_get_anomalies(shared_data: Path) -> None:
    raw = pd.read_csv(shared_data / "walmart_store_sales" / "Walmart_Store_sales.csv")
    weekly = pd.DataFrame(
        {
            "store_code": "W" + raw["Store"].astype(str),
            "day": pd.to_datetime(raw["Date"], format="%d-%m-%Y"),
            "revenue": raw["Weekly_Sales"],
        }
    )
    flags = detect_anomalies(weekly[weekly["store_code"] == "W1"])
    # Thanksgiving and Christmas weeks of 2010 and 2011 stand out; nothing else does
    assert list(flags["day"].dt.strftime("%Y-%m-%d")) == ["2010-11-26", "2010-12-24", "2011-11-25", "2011-12-23"]
    assert set(flags["direction"]) == {"up"}
