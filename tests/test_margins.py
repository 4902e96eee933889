import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from report_lib.errors import (
    DataValidationError,
    InsufficientDataError,
    NeedsOrderLinesError,
    ReportError,
    ReportNotFoundError,
)
from report_lib.margins import MARGIN_COLUMNS, compute_margins, margin_summary_note
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.loaders.products import PRODUCT_SALES_COLUMNS, load_product_sales
from report_lib.warehouse.schema import daily_metrics, import_batches, order_lines, products, stores

NAN = float("nan")


def sales(rows: list[tuple[str, str, float, float, float, int]]) -> pd.DataFrame:
    """Rows of (sku, category, units, revenue, cost, lines_without_cost); the name is the sku in lower case."""
    frame = pd.DataFrame(rows, columns=["sku", "category", "units", "revenue", "cost", "lines_without_cost"])
    frame.insert(1, "name", frame["sku"].str.lower())
    return frame.astype({"units": "float64", "revenue": "float64", "cost": "float64", "lines_without_cost": "int64"})


# A: margin 40 (40 %); B: sold below cost, -20; C: cost unknown for 2 lines; D: 10 (50 %). Known total margin 30.
BASIC = sales(
    [
        ("A", "X", 10, 100, 60, 0),
        ("B", "X", 5, 50, 70, 0),
        ("C", "Y", 3, 30, NAN, 2),
        ("D", "Z", 2, 20, 10, 0),
    ]
)


def test_margins_per_sku_hand_computed() -> None:
    result = compute_margins(BASIC)
    assert list(result.columns) == ["sku", "name", "category", *MARGIN_COLUMNS]
    assert list(result["sku"]) == ["A", "D", "B", "C"]  # by margin, unknown last
    expected = pd.DataFrame(
        {
            "margin": [40.0, 10.0, -20.0, NAN],
            "margin_pct": [40.0, 50.0, -40.0, NAN],
            "contribution": [40 / 30, 10 / 30, -20 / 30, NAN],
        }
    )
    pd.testing.assert_frame_equal(result[["margin", "margin_pct", "contribution"]], expected)
    assert list(result["negative_margin"].astype(object)) == [False, False, True, pd.NA]
    assert list(result["note"]) == ["", "", "", "cost unknown for 2 lines"]
    assert list(result["lines_without_cost"]) == [0, 0, 0, 2]


def test_margins_per_category_hand_computed() -> None:
    result = compute_margins(BASIC, by="category")
    assert list(result.columns) == ["category", *MARGIN_COLUMNS]
    assert list(result["category"]) == ["X", "Z", "Y"]
    got = result.set_index("category")
    assert got.loc["X", "revenue"] == 150
    assert got.loc["X", "cost"] == 130
    assert got.loc["X", "margin"] == 20
    assert got.loc["X", "margin_pct"] == pytest.approx(20 / 150 * 100)
    assert got.loc["X", "contribution"] == pytest.approx(20 / 30)
    assert got.loc["Z", "contribution"] == pytest.approx(10 / 30)
    assert math.isnan(got.loc["Y", "margin"])
    assert got.loc["Y", "note"] == "cost unknown for 2 lines"
    assert got.loc["Y", "revenue"] == 30  # revenue stays known


def test_one_unknown_product_makes_its_category_unknown() -> None:
    partial = sales([("A", "X", 1, 10, 4, 0), ("B", "X", 1, 10, NAN, 1)])
    result = compute_margins(partial, by="category")
    assert math.isnan(result.loc[0, "cost"])
    assert result.loc[0, "note"] == "cost unknown for 1 line"
    assert result.loc[0, "negative_margin"] is pd.NA


def test_summary_note_partial_all_and_none() -> None:
    assert margin_summary_note(compute_margins(BASIC)) == (
        "Unit costs are unknown for 2 order lines (1 of 4 rows, 15.0% of revenue): their margins are left blank "
        "and contributions are shares of the known margin."
    )
    unknown = sales([("A", "X", 1, 10, NAN, 3), ("B", "Y", 1, 5, NAN, 4)])
    note = margin_summary_note(compute_margins(unknown))
    assert note is not None
    assert note.startswith("Margins cannot be computed: unit costs are unknown for 7 order lines")
    assert margin_summary_note(compute_margins(sales([("A", "X", 1, 10, 4, 0)]))) is None


def test_one_product() -> None:
    result = compute_margins(sales([("A", "X", 2, 10, 4, 0)]))
    assert result.loc[0, "margin"] == 6
    assert result.loc[0, "margin_pct"] == 60
    assert result.loc[0, "contribution"] == 1.0
    assert not result.loc[0, "negative_margin"]


def test_zero_revenue_has_no_margin_pct_and_a_loss_has_no_contributions() -> None:
    result = compute_margins(sales([("A", "X", 0, 0, 5, 0), ("B", "X", 1, 10, 12, 0)]))
    got = result.set_index("sku")
    assert math.isnan(got.loc["A", "margin_pct"])
    assert got.loc["A", "margin"] == -5
    assert got["contribution"].isna().all()  # total margin -7: no meaningful shares
    assert got["negative_margin"].all()


def test_nan_cost_without_a_line_count_is_still_unknown() -> None:
    result = compute_margins(sales([("A", "X", 1, 10, NAN, 0)]))
    assert result.loc[0, "note"] == "cost unknown for 1 line"
    assert math.isnan(result.loc[0, "margin"])


def test_input_is_not_mutated() -> None:
    before = BASIC.copy()
    compute_margins(BASIC, by="category")
    pd.testing.assert_frame_equal(BASIC, before)


@pytest.mark.parametrize(
    ("frame", "error", "match"),
    [
        (BASIC.iloc[0:0], InsufficientDataError, "No product sales"),
        (BASIC.drop(columns=["cost"]), DataValidationError, "missing columns"),
        (pd.concat([BASIC, BASIC.iloc[[0]]]), DataValidationError, "repeat skus"),
        (BASIC.assign(revenue=[1.0, NAN, 3.0, 4.0]), DataValidationError, "NaN"),
        (BASIC.assign(lines_without_cost=[0, -1, 2, 0]), DataValidationError, "negative line count"),
        (BASIC.assign(units=["1", "x", "2", "3"]), DataValidationError, "must be numeric"),
    ],
)
def test_bad_input_is_refused(frame: pd.DataFrame, error: type[ReportError], match: str) -> None:
    with pytest.raises(error, match=match):
        compute_margins(frame)


def test_unknown_grouping_is_refused() -> None:
    with pytest.raises(DataValidationError, match="by is 'region'"):
        compute_margins(BASIC, by="region")  # type: ignore[arg-type]


# --- loader: the GROUP BY in the database, SQLite and PostgreSQL ---


def fill_warehouse(engine: Engine) -> None:
    """Store S1 with lines (a return, a discount, a line without cost, one day outside the period), S2 with lines,
    W1 with weekly totals only."""
    line = {"order_id": "o", "customer_id": None, "batch_id": 1}
    rows = [
        # store, day, sku, quantity, unit_price, unit_cost, discount
        ("S1", "2024-03-01", "P1", 2, 10.0, 6.0, 0.0),
        ("S1", "2024-03-02", "P1", 3, 10.0, 6.0, 5.0),
        ("S1", "2024-03-02", "P1", -1, 10.0, 6.0, 0.0),
        ("S1", "2024-03-02", "P2", 1, 50.0, None, 0.0),
        ("S1", "2024-03-03", "P2", 2, 50.0, 30.0, 0.0),
        ("S1", "2024-03-03", "P3", 4, 5.0, 7.0, 0.0),
        ("S1", "2024-03-09", "P1", 100, 10.0, 6.0, 0.0),  # outside the period
        ("S2", "2024-03-02", "P1", 9, 10.0, 6.0, 0.0),  # another store
    ]
    lines = pd.DataFrame(rows, columns=["store_code", "day", "sku", "quantity", "unit_price", "unit_cost", "discount"])
    lines = lines.assign(**line, ordered_at=pd.to_datetime(lines["day"]) + pd.Timedelta(hours=10))
    with engine.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": ["S1", "S2", "W1"], "name": ["One", "Two", "Walmart 1"]}))
        insert_frame(
            conn,
            products,
            pd.DataFrame(
                {"sku": ["P1", "P2", "P3"], "name": ["Pen", "Bag", "Cup"], "category": ["Office", "Travel", "Home"]}
            ),
        )
        insert_frame(
            conn,
            import_batches,
            pd.DataFrame(
                {"batch_id": [1], "kind": ["lines"], "source": ["test"], "loaded_at": [dt.datetime(2024, 4, 1)]}
            ),
        )
        insert_frame(conn, order_lines, lines)
        weekly = pd.DataFrame(
            {"store_code": "W1", "day": ["2010-02-05", "2010-02-12"], "grain": "week", "revenue": [1.0e6, 1.1e6]}
        )
        insert_frame(conn, daily_metrics, weekly.assign(source="import", batch_id=1))


def test_load_product_sales_known_totals(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    result = load_product_sales(warehouse, stores="S1", start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 3))
    assert list(result.columns) == list(PRODUCT_SALES_COLUMNS)
    expected = pd.DataFrame(
        {
            "sku": ["P1", "P2", "P3"],
            "name": ["Pen", "Bag", "Cup"],
            "category": ["Office", "Travel", "Home"],
            "units": [4.0, 3.0, 4.0],
            "revenue": [20 + 30 - 5 - 10.0, 150.0, 20.0],
            "cost": [24.0, NAN, 28.0],
            "lines_without_cost": [0, 1, 0],
        }
    ).astype({"sku": "str", "name": "str", "category": "str"})
    pd.testing.assert_frame_equal(result, expected)


def test_load_product_sales_whole_history_and_several_stores(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    result = load_product_sales(warehouse, stores=["S1", "S2"]).set_index("sku")
    assert result.loc["P1", "units"] == 4 + 100 + 9
    assert result.loc["P1", "cost"] == (4 + 100 + 9) * 6


def test_load_product_sales_one_day(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    day = dt.date(2024, 3, 2)
    result = load_product_sales(warehouse, stores="S1", start=day, end=day).set_index("sku")
    assert list(result.index) == ["P1", "P2"]
    assert result.loc["P1", "units"] == 3 - 1
    assert result.loc["P1", "revenue"] == 30 - 5 - 10
    assert result.loc["P1", "cost"] == 12
    assert math.isnan(result.loc["P2", "cost"])  # its only line that day has no cost


def test_empty_period_gives_no_rows_and_unknown_store_is_named(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    nothing = load_product_sales(warehouse, stores="S1", start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 31))
    assert nothing.empty
    with pytest.raises(InsufficientDataError, match="No product sales"):
        compute_margins(nothing)
    with pytest.raises(ReportNotFoundError, match="No store named 'NOPE'; known: "):
        load_product_sales(warehouse, stores="NOPE")


def test_aggregate_only_store_needs_order_lines(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    with pytest.raises(NeedsOrderLinesError, match="W1 have only aggregate totals: W1: 2 week rows") as caught:
        load_product_sales(warehouse, stores="W1")
    assert "Import an order-lines file for the store" in str(caught.value)
    assert caught.value.details["stores"] == ["W1"]
    with pytest.raises(NeedsOrderLinesError):
        load_product_sales(warehouse, stores=["S1", "W1"])  # a partial total would be a silent wrong number


def test_margins_end_to_end_from_the_database(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    product_sales = load_product_sales(warehouse, stores="S1", start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 3))
    by_sku = compute_margins(product_sales).set_index("sku")
    assert by_sku.loc["P1", "margin"] == 35 - 24
    assert bool(by_sku.loc["P3", "negative_margin"])
    assert by_sku.loc["P2", "note"] == "cost unknown for 1 line"
    by_category = compute_margins(product_sales, by="category").set_index("category")
    assert by_category.loc["Home", "margin"] == -8
    assert np.isclose(by_category.loc["Office", "contribution"], 11 / (11 - 8))
