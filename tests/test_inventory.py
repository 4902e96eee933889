import datetime as dt
import math

import pandas as pd
import pytest
from sqlalchemy import Engine

from report_lib.errors import DataValidationError, InsufficientDataError, NeedsOrderLinesError, ReportError
from report_lib.inventory import ALERT_COLUMNS, reorder_list, stock_alerts
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.loaders.inventory import VELOCITY_COLUMNS, load_sales_velocity, load_stock
from report_lib.warehouse.schema import (
    daily_metrics,
    import_batches,
    inventory_snapshots,
    order_lines,
    products,
    stores,
)

INF = float("inf")

# A out of stock; B at its reorder point; C above it but 4 days of cover < 7 days of lead time; D never sells;
# E above its reorder point with 20 days of cover; F has no velocity row (sold nothing); G negative book stock.
STOCK = pd.DataFrame(
    {
        "sku": ["A", "B", "C", "D", "E", "F", "G"],
        "name": ["Apple", "Bread", "Cheese", "Dates", "Eggs", "Flour", "Grapes"],
        "on_hand": [0, 10, 40, 100, 60, 8, -3],
        "reorder_point": [5, 10, 5, 5, 6, 2, 4],
    }
)
VELOCITY = pd.DataFrame({"sku": ["A", "B", "C", "D", "E", "G"], "daily_velocity": [1.0, 2.0, 10.0, 0.0, 3.0, 0.5]})


def test_stock_alerts_hand_computed() -> None:
    alerts = stock_alerts(STOCK, VELOCITY)
    assert list(alerts.columns) == list(ALERT_COLUMNS)
    got = alerts.set_index("sku")
    assert list(got["daily_velocity"]) == [1.0, 2.0, 10.0, 0.0, 3.0, 0.0, 0.5]
    assert list(got["days_of_cover"]) == [0.0, 5.0, 4.0, INF, 20.0, INF, 0.0]
    assert list(got["below_reorder"]) == [True, True, False, False, False, False, True]
    assert list(got["status"]) == ["out of stock", "reorder now", "low cover", "ok", "ok", "ok", "out of stock"]
    # target = max(reorder point + 1, velocity x (7 + 14)); order = ceil(target - on hand)
    assert list(got["suggested_order"]) == [21, 42 - 10, 210 - 40, 0, 0, 0, math.ceil(10.5 + 3)]


def test_lead_time_and_safety_days_move_the_low_cover_line() -> None:
    short = stock_alerts(STOCK, VELOCITY, lead_time_days=3).set_index("sku")
    assert short.loc["C", "status"] == "ok"
    assert short.loc["C", "suggested_order"] == 0
    safe = stock_alerts(STOCK, VELOCITY, lead_time_days=7, safety_days=14).set_index("sku")
    assert safe.loc["E", "status"] == "low cover"  # 20 days < 7 + 14
    assert safe.loc["E", "suggested_order"] == 3 * 21 - 60


def test_zero_velocity_below_reorder_point_still_orders_above_it() -> None:
    alerts = stock_alerts(
        pd.DataFrame({"sku": ["X"], "on_hand": [3], "reorder_point": [3]}),
        pd.DataFrame({"sku": ["X"], "daily_velocity": [0.0]}),
    )
    assert alerts.loc[0, "status"] == "reorder now"
    assert alerts.loc[0, "suggested_order"] == 1
    assert alerts.loc[0, "name"] == "X"  # no name column: the sku stands in


def test_negative_and_nan_velocity_count_as_no_sales() -> None:
    alerts = stock_alerts(
        pd.DataFrame({"sku": ["X", "Y"], "on_hand": [5, 5], "reorder_point": [1, 1]}),
        pd.DataFrame({"sku": ["X", "Y"], "daily_velocity": [-2.0, float("nan")]}),
    )
    assert list(alerts["daily_velocity"]) == [0.0, 0.0]
    assert list(alerts["days_of_cover"]) == [INF, INF]


def test_reorder_list_most_urgent_first() -> None:
    todo = reorder_list(stock_alerts(STOCK, VELOCITY))
    # out of stock first (the faster seller A before G at equal cover), then reorder now, then low cover
    assert list(todo["sku"]) == ["A", "G", "B", "C"]
    assert list(todo.columns) == list(ALERT_COLUMNS)
    nothing = reorder_list(stock_alerts(STOCK.iloc[[3]], VELOCITY))
    assert nothing.empty


def test_input_is_not_mutated() -> None:
    stock, velocity = STOCK.copy(), VELOCITY.copy()
    stock_alerts(STOCK, VELOCITY)
    pd.testing.assert_frame_equal(STOCK, stock)
    pd.testing.assert_frame_equal(VELOCITY, velocity)


@pytest.mark.parametrize(
    ("stock", "velocity", "error", "match"),
    [
        (STOCK.iloc[0:0], VELOCITY, InsufficientDataError, "No stock levels"),
        (STOCK.drop(columns=["reorder_point"]), VELOCITY, DataValidationError, "missing columns"),
        (STOCK, VELOCITY.rename(columns={"daily_velocity": "rate"}), DataValidationError, "missing columns"),
        (pd.concat([STOCK, STOCK.iloc[[1]]]), VELOCITY, DataValidationError, "repeats skus"),
        (STOCK.assign(on_hand=[0, None, 1, 1, 1, 1, 1]), VELOCITY, DataValidationError, "missing on-hand"),
        (STOCK.assign(reorder_point=[0, -1, 1, 1, 1, 1, 1]), VELOCITY, DataValidationError, "negative reorder"),
        (STOCK.assign(on_hand=["1", "x", "1", "1", "1", "1", "1"]), VELOCITY, DataValidationError, "numeric"),
        (STOCK, pd.concat([VELOCITY, VELOCITY.iloc[[0]]]), DataValidationError, "repeats skus"),
        (STOCK, VELOCITY.assign(daily_velocity=INF), DataValidationError, "infinite"),
    ],
)
def test_bad_input_is_refused(
    stock: pd.DataFrame, velocity: pd.DataFrame, error: type[ReportError], match: str
) -> None:
    with pytest.raises(error, match=match):
        stock_alerts(stock, velocity)


def test_negative_days_are_refused() -> None:
    with pytest.raises(DataValidationError, match="lead_time_days=-1"):
        stock_alerts(STOCK, VELOCITY, lead_time_days=-1)


# --- loaders, SQLite and PostgreSQL ---


def fill_warehouse(engine: Engine) -> None:
    """S1: snapshots on two days, lines over March 2024 (with a return); W1: weekly totals only."""
    snapshots = pd.DataFrame(
        [
            ("S1", "P1", "2024-03-01", 50, 10),
            ("S1", "P1", "2024-03-20", 12, 10),
            ("S1", "P2", "2024-03-01", 0, 3),
            ("S1", "P1", "2024-04-01", 99, 10),  # after the day asked for
            ("S2", "P1", "2024-03-25", 7, 1),  # another store
        ],
        columns=["store_code", "sku", "as_of", "on_hand", "reorder_point"],
    )
    rows = [
        ("2024-03-02", "P1", 5),  # before a 28-day window ending 2024-03-31
        ("2024-03-04", "P1", 14),  # first day of the window
        ("2024-03-20", "P1", 20),
        ("2024-03-20", "P1", -4),  # a return: not subtracted
        ("2024-03-31", "P2", 7),  # last day of the window
        ("2024-04-01", "P1", 50),  # after it
    ]
    lines = pd.DataFrame(rows, columns=["day", "sku", "quantity"]).assign(
        store_code="S1", order_id="o", unit_price=1.0, unit_cost=0.5, discount=0.0, batch_id=1
    )
    lines["ordered_at"] = pd.to_datetime(lines["day"])
    with engine.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": ["S1", "S2", "W1"], "name": ["One", "Two", "Walmart 1"]}))
        insert_frame(
            conn,
            products,
            pd.DataFrame({"sku": ["P1", "P2"], "name": ["Pen", "Bag"], "category": ["Office", "Travel"]}),
        )
        insert_frame(
            conn,
            import_batches,
            pd.DataFrame(
                {"batch_id": [1], "kind": ["lines"], "source": ["test"], "loaded_at": [dt.datetime(2024, 4, 2)]}
            ),
        )
        insert_frame(conn, inventory_snapshots, snapshots)
        insert_frame(conn, order_lines, lines)
        weekly = pd.DataFrame({"store_code": "W1", "day": ["2010-02-05"], "grain": "week", "revenue": [1.0e6]})
        insert_frame(conn, daily_metrics, weekly.assign(source="import", batch_id=1))


def test_load_stock_latest_snapshot_on_or_before(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    stock = load_stock(warehouse, store="S1", as_of=dt.date(2024, 3, 31))
    assert list(stock["sku"]) == ["P1", "P2"]
    assert list(stock["on_hand"]) == [12, 0]
    assert list(stock["as_of"]) == [pd.Timestamp("2024-03-20"), pd.Timestamp("2024-03-01")]
    assert list(stock["name"]) == ["Pen", "Bag"]
    early = load_stock(warehouse, store="S1", as_of=dt.date(2024, 3, 10))
    assert list(early["on_hand"]) == [50, 0]
    latest = load_stock(warehouse, store="S1")
    assert list(latest["on_hand"]) == [99, 0]
    assert load_stock(warehouse, store="S1", as_of=dt.date(2024, 1, 1)).empty


def test_load_sales_velocity_window(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    velocity = load_sales_velocity(warehouse, store="S1", end=dt.date(2024, 3, 31), days=28)
    assert list(velocity.columns) == list(VELOCITY_COLUMNS)
    assert list(velocity["sku"]) == ["P1", "P2"]
    assert list(velocity["units_sold"]) == [34, 7]
    assert list(velocity["daily_velocity"]) == [34 / 28, 7 / 28]
    one_day = load_sales_velocity(warehouse, store="S1", end=dt.date(2024, 3, 20), days=1)
    assert list(one_day["units_sold"]) == [20]
    assert load_sales_velocity(warehouse, store="S1", end=dt.date(2023, 1, 1)).empty
    with pytest.raises(DataValidationError, match="days is 0"):
        load_sales_velocity(warehouse, store="S1", end=dt.date(2024, 3, 31), days=0)


def test_aggregate_only_store_needs_order_lines_for_velocity(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    with pytest.raises(
        NeedsOrderLinesError, match=r"Stock alerts need order lines .* store\(s\) W1 have only aggregate totals"
    ):
        load_sales_velocity(warehouse, store="W1", end=dt.date(2010, 2, 5))
    with pytest.raises(InsufficientDataError, match="No stock levels"):
        stock_alerts(load_stock(warehouse, store="W1"), pd.DataFrame({"sku": [], "daily_velocity": []}))


def test_stock_alerts_end_to_end_from_the_database(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    end = dt.date(2024, 3, 31)
    alerts = stock_alerts(
        load_stock(warehouse, store="S1", as_of=end), load_sales_velocity(warehouse, store="S1", end=end)
    )
    got = alerts.set_index("sku")
    assert got.loc["P1", "days_of_cover"] == pytest.approx(12 / (34 / 28))
    assert got.loc["P1", "status"] == "ok"  # above its reorder point (12 > 10), 9.9 days of cover > 7
    assert got.loc["P2", "status"] == "out of stock"
    assert list(reorder_list(alerts)["sku"]) == ["P2"]
