"""Customer segments: the RFM loader on SQLite and PostgreSQL, quintile scores, named segments, k-means, profiles."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from report_lib.errors import (
    DataValidationError,
    InsufficientDataError,
    NeedsOrderLinesError,
    ReportNotFoundError,
)
from report_lib.segments import (
    NEW,
    NOT_CLUSTERED,
    RETURNS_ONLY,
    SEGMENT_RULES,
    cluster_customers,
    name_segments,
    quintile_scores,
    score_rfm,
    segment_profile,
    segment_rules_table,
)
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.loaders.customers import RFM_COLUMNS, load_customer_rfm
from report_lib.warehouse.schema import daily_metrics, import_batches, order_lines, products, stores

AS_OF = dt.date(2024, 2, 29)
START = dt.date(2024, 1, 1)

# store, order, day, customer, sku, quantity, unit_price, discount
LINES = [
    ("S1", "o1", "2024-01-10", "c1", "A", 2, 10.0, 1.0),  # c1 net 19 + 5 = 24
    ("S1", "o1", "2024-01-10", "c1", "B", 1, 5.0, 0.0),
    ("S1", "o2", "2024-02-01", "c1", "A", 1, 10.0, 0.0),  # c1 +10
    ("S1", "o3", "2024-02-05", "c1", "A", -1, 10.0, 0.0),  # c1 returns one A: -10, not an order bought
    ("S1", "o4", "2024-01-20", "c2", "C", 1, 4.0, 0.0),  # c2 +4
    ("S1", "o5", "2024-02-10", "c3", "B", -3, 5.0, 0.0),  # c3 returns only: -15
    ("S1", "o6", "2024-02-15", None, "A", 5, 10.0, 0.0),  # anonymous: never counted
    ("S1", "o7", "2023-12-31", "c2", "B", 1, 5.0, 0.0),  # before START
    ("S1", "o8", "2024-03-05", "c1", "A", 1, 10.0, 0.0),  # after AS_OF
    ("S2", "o1", "2024-02-20", "c1", "C", 1, 4.0, 0.0),  # same order id, other store: another order
]


def lines_frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["store_code", "order_id", "day", "customer_id", "sku", "quantity", "unit_price", "discount"]
    )
    frame["day"] = pd.to_datetime(frame["day"])
    frame["ordered_at"] = frame["day"] + pd.Timedelta(hours=10)
    return frame.assign(batch_id=1)


def fill_warehouse(engine: Engine, lines: pd.DataFrame, *, aggregate_only: tuple[str, ...] = ()) -> None:
    codes = sorted({*lines["store_code"], *aggregate_only, "E1"})  # E1: a store with no data at all
    with engine.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": codes, "name": codes}))
        skus = sorted(set(lines["sku"]))
        insert_frame(conn, products, pd.DataFrame({"sku": skus, "name": [f"Product {s}" for s in skus]}))
        batch = {"batch_id": [1], "kind": ["lines"], "source": ["test"], "loaded_at": [dt.datetime(2024, 3, 1)]}
        insert_frame(conn, import_batches, pd.DataFrame(batch))
        insert_frame(conn, order_lines, lines)
        for code in aggregate_only:
            weeks = pd.date_range("2024-01-05", periods=3, freq="7D")
            totals = {"day": weeks, "grain": "week", "revenue": [100.0, 120.0, 90.0], "source": "import"}
            insert_frame(conn, daily_metrics, pd.DataFrame({"store_code": code, **totals, "batch_id": 1}))


def expected_rfm(lines: pd.DataFrame, stores_: set[str], as_of: dt.date, start: dt.date | None) -> pd.DataFrame:
    """The RFM definitions computed with plain Python loops, independently of the SQL."""
    orders: dict[str, set[tuple[str, str]]] = {}
    net: dict[str, float] = {}
    bought: dict[str, list[dt.date]] = {}
    any_line: dict[str, list[dt.date]] = {}
    for row in lines.itertuples(index=False):
        day = row.day.date()
        if row.store_code not in stores_ or pd.isna(row.customer_id) or day > as_of or (start and day < start):
            continue
        customer = str(row.customer_id)
        net[customer] = net.get(customer, 0.0) + row.quantity * row.unit_price - row.discount
        any_line.setdefault(customer, []).append(day)
        orders.setdefault(customer, set())
        bought.setdefault(customer, [])
        if row.quantity > 0:
            orders[customer].add((row.store_code, row.order_id))
            bought[customer].append(day)
    rows = []
    for customer in sorted(net):
        days = bought[customer] or any_line[customer]
        first, last = min(days), max(days)
        rows.append((customer, (as_of - last).days, len(orders[customer]), net[customer], first, last))
    frame = pd.DataFrame(rows, columns=list(RFM_COLUMNS))
    frame["customer_id"] = frame["customer_id"].astype("str")
    frame["first_day"] = pd.to_datetime(frame["first_day"])
    frame["last_day"] = pd.to_datetime(frame["last_day"])
    return frame.astype({"recency_days": "int64", "frequency": "int64", "monetary": "float64"})


# ---------------------------------------------------------------- loader, on SQLite and PostgreSQL


def test_load_customer_rfm_values(warehouse: Engine) -> None:
    lines = lines_frame(LINES)
    fill_warehouse(warehouse, lines)
    rfm = load_customer_rfm(warehouse, stores="S1", as_of=AS_OF, start=START)
    # by hand: c1 bought o1 and o2 (o3 is a return), net 24 + 10 - 10; c3 only returned, so its days are the return's
    assert rfm["customer_id"].tolist() == ["c1", "c2", "c3"]
    assert rfm["frequency"].tolist() == [2, 1, 0]
    assert rfm["monetary"].tolist() == pytest.approx([24.0, 4.0, -15.0])
    assert rfm["recency_days"].tolist() == [28, 40, 19]
    assert rfm["first_day"].dt.date.tolist() == [dt.date(2024, 1, 10), dt.date(2024, 1, 20), dt.date(2024, 2, 10)]
    pd.testing.assert_frame_equal(rfm, expected_rfm(lines, {"S1"}, AS_OF, START), check_dtype=False)
    both = load_customer_rfm(warehouse, stores=["S1", "S2"], as_of=AS_OF)  # S2's "o1" is a third order of c1
    pd.testing.assert_frame_equal(both, expected_rfm(lines, {"S1", "S2"}, AS_OF, None), check_dtype=False)
    assert both.loc[both["customer_id"] == "c1", ["frequency", "recency_days"]].to_numpy().tolist() == [[3, 9]]
    assert both.loc[both["customer_id"] == "c2", "frequency"].item() == 2  # o7 counts without a start


def test_load_customer_rfm_matches_python_loops_on_random_lines(sqlite_warehouse: Engine) -> None:
    rng = np.random.default_rng(7)
    rows = [
        (
            str(rng.choice(["S1", "S2"])),
            f"o{rng.integers(0, 25)}",
            str(dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 60)))),
            None if rng.random() < 0.2 else f"c{rng.integers(0, 8)}",
            str(rng.choice(["A", "B", "C"])),
            int(rng.choice([-2, -1, 1, 2, 3])),
            float(rng.integers(1, 20)),
            float(rng.choice([0.0, 0.5])),
        )
        for _ in range(80)
    ]
    lines = lines_frame(rows)
    fill_warehouse(sqlite_warehouse, lines)
    got = load_customer_rfm(sqlite_warehouse, stores=["S1", "S2"], as_of=dt.date(2024, 2, 20), start=START)
    want = expected_rfm(lines, {"S1", "S2"}, dt.date(2024, 2, 20), START)
    assert len(got) >= 6
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_aggregate_only_store_needs_order_lines(warehouse: Engine) -> None:
    fill_warehouse(warehouse, lines_frame(LINES), aggregate_only=("W1",))
    with pytest.raises(NeedsOrderLinesError, match="order lines") as caught:
        load_customer_rfm(warehouse, stores="W1", as_of=AS_OF)
    message = str(caught.value)
    assert "W1: 3 week rows in daily_metrics (source 'import') from 2024-01-05 to 2024-01-19" in message
    assert "customer_id" in message and "runner.py import" in message
    with pytest.raises(NeedsOrderLinesError, match=r"store\(s\) W1 have only aggregate totals"):
        load_customer_rfm(warehouse, stores=["S1", "W1"], as_of=AS_OF, start=START)  # not a partial roll-up


@pytest.mark.parametrize(
    ("stores_", "start", "as_of", "error", "match"),
    [
        ("E1", None, AS_OF, InsufficientDataError, "no data at all"),
        ("S1", None, dt.date(2020, 1, 1), InsufficientDataError, "run from 2023-12-31 to 2024-03-05"),
        ("S1", dt.date(2024, 2, 15), dt.date(2024, 2, 15), InsufficientDataError, "anonymous sales only"),
        ("NOPE", None, AS_OF, ReportNotFoundError, "No store named 'NOPE'; known: E1, S1, S2"),
        ([], None, AS_OF, InsufficientDataError, "No stores were selected"),
    ],
)
def test_load_customer_rfm_says_why_it_is_empty(
    sqlite_warehouse: Engine,
    stores_: str | list[str],
    start: dt.date | None,
    as_of: dt.date,
    error: type[Exception],
    match: str,
) -> None:
    fill_warehouse(sqlite_warehouse, lines_frame(LINES))
    with pytest.raises(error, match=match) as caught:
        load_customer_rfm(sqlite_warehouse, stores=stores_, as_of=as_of, start=start)
    assert not isinstance(caught.value, NeedsOrderLinesError)


# ---------------------------------------------------------------- scores


def qcut_by_hand(values: list[float], ids: list[str]) -> list[int]:
    """Quintile scores as defined, with loops: rank by (value, id), then pd.qcut's bins (edges at 1 + (n-1)k/5)."""
    n = len(values)
    order = sorted(range(n), key=lambda i: (values[i], ids[i]))
    scores = [0] * n
    for position, i in enumerate(order):
        rank = position + 1
        scores[i] = next(k for k in range(1, 6) if rank <= 1 + (n - 1) * k / 5)
    return scores


def rfm_frame(recency: list[int], frequency: list[int], monetary: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([f"c{i:02d}" for i in range(len(recency))], dtype="str"),
            "recency_days": pd.Series(recency, dtype="int64"),
            "frequency": pd.Series(frequency, dtype="int64"),
            "monetary": pd.Series(monetary, dtype="float64"),
        }
    )


def test_scores_match_an_independent_computation() -> None:
    recency = [3, 40, 40, 200, 7, 7, 90, 15, 365, 1, 60, 40, 3]
    frequency = [9, 1, 1, 2, 5, 1, 1, 3, 1, 12, 2, 1, 4]
    monetary = [500.0, 20, 35, 60, 210, 12, 18, 75, 9, 900, 44, 20, 130]
    rfm = rfm_frame(recency, frequency, monetary)
    scored = score_rfm(rfm)
    ids = rfm["customer_id"].tolist()
    assert scored["r_score"].tolist() == qcut_by_hand([-float(r) for r in recency], ids)
    assert scored["f_score"].tolist() == qcut_by_hand([float(f) for f in frequency], ids)
    assert scored["m_score"].tolist() == qcut_by_hand(monetary, ids)
    # by hand: c09 (1 day, 12 orders, 900) is best on all three. c08 (365 days, 9) is worst on R and M, but six
    # customers have 1 order: ranked by id c01..c11 they take ranks 1..6, and rank 5 of 13 falls in qcut's second
    # bin (edges 1, 3.4, 5.8, 8.2, 10.6, 13), so c08 gets F=2 while c01 gets F=1.
    assert scored.loc[9, ["r_score", "f_score", "m_score", "rfm_code"]].tolist() == [5, 5, 5, 555]
    assert scored.loc[8, ["r_score", "f_score", "m_score", "rfm_code"]].tolist() == [1, 2, 1, 121]
    assert scored.loc[1, "f_score"] == 1
    shuffled = score_rfm(rfm.sample(frac=1, random_state=3))
    pd.testing.assert_frame_equal(shuffled.sort_index(), scored)
    pd.testing.assert_frame_equal(rfm, rfm_frame(recency, frequency, monetary))  # input untouched


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, [3]),
        (2, [2, 4]),
        (3, [1, 3, 5]),
        (4, [1, 2, 4, 5]),
        (5, [1, 2, 3, 4, 5]),
        (10, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
    ],
)
def test_quintile_scores_for_few_customers(count: int, expected: list[int]) -> None:
    assert quintile_scores(pd.Series(np.arange(count, dtype="float64"))).tolist() == expected


def test_ties_break_by_customer_id() -> None:
    scored = score_rfm(rfm_frame([10] * 10, [1] * 10, [5.0] * 10).iloc[::-1])
    by_id = scored.sort_values("customer_id")
    assert by_id["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert by_id["r_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_returns_larger_than_sales_are_not_scored() -> None:
    rfm = rfm_frame([5, 10, 20, 30, 40, 2], [4, 3, 2, 1, 1, 3], [50.0, 40, 30, 20, 10, -25])
    scored = score_rfm(rfm)
    assert scored.loc[5, ["r_score", "f_score", "m_score", "rfm_code"]].isna().all()
    # the other five are scored as if the returner were absent: 1..5 each
    assert scored.loc[:4, "m_score"].tolist() == [5, 4, 3, 2, 1]
    assert scored.loc[:4, "r_score"].tolist() == [5, 4, 3, 2, 1]
    named = name_segments(with_days(scored))
    assert named.loc[5, "segment"] == RETURNS_ONLY


def test_empty_and_single_customer() -> None:
    empty = score_rfm(rfm_frame([], [], []))
    assert empty.empty and {"r_score", "f_score", "m_score", "rfm_code"} <= set(empty.columns)
    assert name_segments(with_days(empty))["segment"].tolist() == []
    assert segment_profile(name_segments(with_days(empty))).empty
    one = score_rfm(rfm_frame([12], [2], [80.0]))
    assert one.loc[0, ["r_score", "f_score", "m_score"]].tolist() == [3, 3, 3]


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        (rfm_frame([1], [1], [1.0]).drop(columns="frequency"), DataValidationError, "missing columns.*frequency"),
        (rfm_frame([1], [1], [1.0]).assign(monetary=["12"]), DataValidationError, "'monetary' has dtype"),
        (rfm_frame([1, 2], [1, 1], [1.0, np.nan]), DataValidationError, "1 missing values"),
        (pd.concat([rfm_frame([1], [1], [1.0])] * 2), DataValidationError, "one row per customer"),
    ],
)
def test_bad_rfm_tables_are_refused(frame: pd.DataFrame, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        score_rfm(frame)


# ---------------------------------------------------------------- named segments and profiles


def with_days(scored: pd.DataFrame, tenure_extra: int = 400) -> pd.DataFrame:
    """first/last days such that the tenure is recency + tenure_extra days (nobody is New unless asked)."""
    last = pd.Timestamp("2024-12-31") - pd.to_timedelta(scored["recency_days"], unit="D")
    return scored.assign(last_day=last, first_day=last - pd.Timedelta(days=tenure_extra))


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, "Champions"),
        (4, 4, 4, "Champions"),
        (4, 5, 2, "Loyal"),
        (3, 4, 1, "Loyal"),
        (5, 1, 5, "Potential loyalist"),
        (4, 3, 3, "Potential loyalist"),
        (2, 5, 5, "At risk"),
        (1, 3, 1, "At risk"),
        (3, 3, 5, "Need attention"),
        (3, 1, 1, "Need attention"),
        (2, 2, 5, "Hibernating"),
        (1, 1, 1, "Hibernating"),
    ],
)
def test_segment_rules(r: int, f: int, m: int, segment: str) -> None:
    scored = pd.DataFrame(
        {"recency_days": [30], "monetary": [10.0], "r_score": [r], "f_score": [f], "m_score": [m]}
    ).astype({"r_score": "Int64", "f_score": "Int64", "m_score": "Int64"})
    assert name_segments(with_days(scored))["segment"].tolist() == [segment]


def test_every_score_combination_has_a_segment() -> None:
    grid = np.array(np.meshgrid(*[range(1, 6)] * 3)).reshape(3, -1).T
    scored = pd.DataFrame(grid, columns=["r_score", "f_score", "m_score"]).assign(recency_days=30, monetary=1.0)
    named = name_segments(with_days(scored))
    assert set(named["segment"]) == {rule.name for rule in SEGMENT_RULES}
    table = segment_rules_table(new_days=14)
    assert table["segment"].tolist()[:2] == [RETURNS_ONLY, NEW] and "14 days" in table.loc[1, "meaning"]


def test_new_means_first_purchase_within_new_days() -> None:
    scored = score_rfm(rfm_frame([3, 3, 3], [1, 1, 1], [10.0, 10.0, 10.0]))
    last = pd.Timestamp("2024-12-28")
    first = [last - pd.Timedelta(days=d) for d in (0, 27, 28)]  # tenures 3, 30, 31 days
    named = name_segments(scored.assign(last_day=last, first_day=first), new_days=30)
    assert named["segment"].tolist()[:2] == [NEW, NEW]
    assert named["segment"].tolist()[2] != NEW


def test_segment_profile_values() -> None:
    segmented = pd.DataFrame(
        {
            "segment": ["Hibernating", "Champions", "Champions", RETURNS_ONLY, "Champions"],
            "recency_days": [200, 2, 4, 30, 6],
            "frequency": [1, 10, 6, 1, 8],
            "monetary": [20.0, 300.0, 100.0, -20.0, 200.0],
        }
    )
    profile = segment_profile(segmented)
    assert profile["segment"].tolist() == ["Champions", "Hibernating", RETURNS_ONLY]
    assert profile["customers"].tolist() == [3, 1, 1]
    assert profile["share"].tolist() == pytest.approx([0.6, 0.2, 0.2])
    assert profile["recency_mean"].tolist() == pytest.approx([4.0, 200.0, 30.0])
    assert profile["frequency_mean"].tolist() == pytest.approx([8.0, 1.0, 1.0])
    assert profile["revenue"].tolist() == pytest.approx([600.0, 20.0, -20.0])
    assert profile["revenue_share"].tolist() == pytest.approx([1.0, 20 / 600, -20 / 600])


# ---------------------------------------------------------------- k-means


def three_blobs(per_blob: int = 40, seed: int = 1) -> pd.DataFrame:
    """Three clearly separated groups in log space: recent big spenders, middling, lapsed small spenders."""
    rng = np.random.default_rng(seed)
    centres = [(3, 30, 3000.0), (60, 6, 300.0), (300, 1, 20.0)]
    parts = []
    for recency, frequency, monetary in centres:
        noise = rng.uniform(0.9, 1.1, size=(per_blob, 3))
        parts.append(np.column_stack([recency * noise[:, 0], frequency * noise[:, 1], monetary * noise[:, 2]]))
    values = np.vstack(parts)
    frame = rfm_frame(
        np.round(values[:, 0]).astype(int).tolist(),
        np.maximum(np.round(values[:, 1]), 1).astype(int).tolist(),
        values[:, 2].tolist(),
    )
    return frame.assign(customer_id=[f"c{i:03d}" for i in range(len(frame))]).astype({"customer_id": "str"})


def test_kmeans_finds_three_blobs_and_numbers_them_by_spend() -> None:
    rfm = three_blobs()
    result = cluster_customers(rfm, seed=0)
    assert result.k == 3
    assert result.silhouette["k"].tolist() == list(range(2, 9))
    assert result.silhouette.set_index("k")["silhouette"].idxmax() == 3
    labels = result.assignments["cluster"].to_numpy()
    assert labels.tolist() == [0] * 40 + [1] * 40 + [2] * 40  # blob order is spend order
    profile = segment_profile(result.assignments, segment_col="cluster")
    assert profile["cluster"].tolist() == [0, 1, 2] and profile["customers"].tolist() == [40, 40, 40]


def test_kmeans_is_reproducible_and_ignores_row_order() -> None:
    rfm = three_blobs(per_blob=30, seed=5).assign(monetary=lambda f: f["monetary"] * np.linspace(0.5, 2, 90))
    first = cluster_customers(rfm, seed=11, sample_size=50)
    again = cluster_customers(rfm, seed=11, sample_size=50)
    pd.testing.assert_frame_equal(first.assignments, again.assignments)
    pd.testing.assert_frame_equal(first.silhouette, again.silhouette)
    shuffled = cluster_customers(rfm.sample(frac=1, random_state=2), seed=11, sample_size=50)
    pd.testing.assert_frame_equal(shuffled.assignments.sort_index(), first.assignments)


@pytest.mark.parametrize(
    ("recency", "frequency", "monetary", "k", "clusters"),
    [
        ([], [], [], 0, []),
        ([5], [2], [10.0], 1, [0]),
        ([5, 50], [2, 1], [10.0, 3.0], 1, [0, 0]),  # k=2 needs 3 customers for a silhouette
        ([5, 5, 5, 5], [2, 2, 2, 2], [10.0] * 4, 1, [0, 0, 0, 0]),  # all alike: nothing to split
        ([5, 9], [2, 1], [10.0, -4.0], 1, [0, NOT_CLUSTERED]),  # returns larger than sales
    ],
)
def test_kmeans_degrades_on_tiny_inputs(
    recency: list[int], frequency: list[int], monetary: list[float], k: int, clusters: list[int]
) -> None:
    result = cluster_customers(rfm_frame(recency, frequency, monetary))
    assert result.k == k
    assert result.assignments["cluster"].tolist() == clusters
    assert result.silhouette.empty


def test_kmeans_refuses_negative_recency() -> None:
    with pytest.raises(DataValidationError, match="negative values"):
        cluster_customers(rfm_frame([-3, 4, 5], [1, 1, 2], [1.0, 2.0, 3.0]))
