import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from report_lib.errors import DataValidationError
from report_lib.kpis import KPI_COLUMNS, change_pct, comparison_totals, compute_kpis, kpis_from_totals
from report_lib.periods import Period, parse_period
from report_lib.warehouse.loaders.daily import load_daily_metrics
from report_lib.warehouse.loaders.kpis import (
    load_category_comparison,
    load_category_revenue,
    load_comparison_totals,
    load_period_totals,
)
from report_lib.warehouse.schema import daily_metrics, import_batches, order_lines, products, stores

NAN = float("nan")
COLUMNS = ["store_code", "day", "grain", "revenue", "orders", "units", "customers", "cost", "margin", "returns"]
WEEK_10 = parse_period("2024-W10", today=dt.date(2024, 3, 20))  # Mon 2024-03-04 .. Sun 2024-03-10


def frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    """Rows of (day, revenue, orders, units, customers, cost, margin, returns[, grain]) for store 'S'."""
    records = []
    for row in rows:
        day, revenue, orders, units, customers, cost, margin, returns, *grain = row
        records.append(
            [
                "S",
                pd.Timestamp(str(day)),
                grain[0] if grain else "day",
                revenue,
                orders,
                units,
                customers,
                cost,
                margin,
                returns,
            ]
        )
    out = pd.DataFrame(records, columns=COLUMNS)
    out["return_units"] = 0.0
    return out.astype({c: "float64" for c in COLUMNS[3:]})


# Current week: three days, one of them all zero; previous week: one day; a day after the period is ignored.
BASIC = frame(
    [
        ("2024-02-26", 250, 10, 20, 9, 150, 100, 50),
        ("2024-03-04", 100, 4, 10, 3, 60, 40, 0),
        ("2024-03-05", 200, 6, 14, 5, 110, 90, 25),
        ("2024-03-10", 0, 0, 0, 0, 0, 0, 0),
        ("2024-03-11", 999, 9, 9, 9, 9, 9, 9),
    ]
)


def kpi_row(table: pd.DataFrame, kpi: str) -> pd.Series:
    return table.set_index("kpi").loc[kpi]


def test_hand_computed_kpis_against_previous_week() -> None:
    table = compute_kpis(BASIC, WEEK_10)
    assert list(table.columns) == list(KPI_COLUMNS)
    got = table.set_index("kpi")[["value", "previous", "change", "change_pct"]]
    expected = pd.DataFrame(
        {
            "value": [300, 10, 24, 8, 30, 2.4, 130, 130 / 300 * 100, 25 / 325 * 100],
            "previous": [250, 10, 20, 9, 25, 2.0, 100, 40, 50 / 300 * 100],
            "change": [50, 0, 4, -1, 5, 0.4, 30, 130 / 3 - 40, 25 / 3.25 - 50 / 3],
            "change_pct": [20, 0, 20, -100 / 9, 20, 20, 30, (130 / 3 - 40) / 40 * 100, (25 / 3.25 * 3 / 50 - 1) * 100],
        },
        index=pd.Index(
            [
                "revenue",
                "orders",
                "units",
                "customers",
                "aov",
                "units_per_order",
                "gross_margin",
                "margin_pct",
                "return_rate",
            ],
            name="kpi",
        ),
        dtype="float64",
    )
    pd.testing.assert_frame_equal(got, expected)
    # no rows a year earlier: NaN, not 0
    assert table[["last_year", "change_ly", "change_pct_ly"]].isna().all().all()
    assert list(table["unit"]) == ["money", "count", "count", "count", "money", "ratio", "money", "percent", "percent"]


def test_customers_summed_over_days_are_flagged_approximate() -> None:
    table = compute_kpis(BASIC, WEEK_10).set_index("kpi")["approximate"]
    assert table["customers"] and not table["revenue"]
    one_day = compute_kpis(BASIC, Period(dt.date(2024, 3, 5), dt.date(2024, 3, 5), "d")).set_index("kpi")
    assert one_day.loc["customers", "value"] == 5
    # the day before (03-04) has data; a year earlier (2023-03-07) has none
    assert not one_day.loc["customers", "approximate"] and one_day.loc["customers", "previous"] == 3


def test_last_year_uses_the_same_weekdays() -> None:
    shifted = BASIC.assign(day=BASIC["day"] - pd.Timedelta(days=364))
    daily = pd.concat([BASIC, shifted[shifted["day"] >= "2023-03-06"]], ignore_index=True)
    table = compute_kpis(daily, WEEK_10).set_index("kpi")
    assert table.loc["revenue", "last_year"] == 300
    assert table.loc["revenue", "change_ly"] == 0 and table.loc["revenue", "change_pct_ly"] == 0


def test_input_is_not_mutated_and_order_does_not_matter() -> None:
    shuffled = BASIC.sample(frac=1.0, random_state=3)
    before = shuffled.copy()
    pd.testing.assert_frame_equal(compute_kpis(shuffled, WEEK_10), compute_kpis(BASIC, WEEK_10))
    pd.testing.assert_frame_equal(shuffled, before)


def test_empty_frame_gives_nan_kpis_not_a_crash() -> None:
    table = compute_kpis(BASIC.iloc[0:0], WEEK_10)
    assert len(table) == 9
    assert table[["value", "previous", "last_year", "change_pct"]].isna().all().all()


def test_one_day_store() -> None:
    daily = frame([("2024-03-06", 80, 2, 3, 2, 50, 30, 0)])
    table = compute_kpis(daily, WEEK_10).set_index("kpi")
    assert table.loc[["revenue", "aov", "units_per_order", "margin_pct", "return_rate"], "value"].tolist() == [
        80,
        40,
        1.5,
        37.5,
        0,
    ]
    assert math.isnan(table.loc["revenue", "previous"])


def test_all_zero_days_give_zero_totals_and_nan_ratios() -> None:
    daily = frame([("2024-03-04", 0, 0, 0, 0, 0, 0, 0), ("2024-03-05", 0, 0, 0, 0, 0, 0, 0)])
    table = compute_kpis(daily, WEEK_10).set_index("kpi")["value"]
    assert table[["revenue", "orders", "units", "gross_margin"]].tolist() == [0, 0, 0, 0]
    assert table[["aov", "units_per_order", "margin_pct", "return_rate"]].isna().all()


def test_returns_larger_than_sales() -> None:
    # gross sales 100, returns 150: revenue -50, return rate 150 %, margin % undefined on negative revenue
    daily = frame([("2024-03-04", -50, 2, -1, 2, 20, -70, 150)])
    table = compute_kpis(daily, WEEK_10).set_index("kpi")["value"]
    assert table["return_rate"] == pytest.approx(150.0)
    assert table["aov"] == -25
    assert math.isnan(table["margin_pct"])


def test_nan_cost_on_one_day_makes_the_period_margin_unknown() -> None:
    daily = frame([("2024-03-04", 100, 4, 10, 3, 60, 40, 0), ("2024-03-05", 200, 6, 14, 5, NAN, NAN, 0)])
    table = compute_kpis(daily, WEEK_10).set_index("kpi")["value"]
    assert table["revenue"] == 300
    assert math.isnan(table["gross_margin"]) and math.isnan(table["margin_pct"])


def test_margin_falls_back_to_revenue_minus_cost() -> None:
    daily = frame([("2024-03-04", 100, 4, 10, 3, 60, NAN, 0)])
    assert compute_kpis(daily, WEEK_10).set_index("kpi").loc["gross_margin", "value"] == 40


def test_zero_base_gives_nan_change_pct_but_an_absolute_change() -> None:
    daily = frame([("2024-02-26", 0, 0, 0, 0, 0, 0, 0), ("2024-03-04", 100, 4, 10, 3, 60, 40, 0)])
    row = kpi_row(compute_kpis(daily, WEEK_10), "revenue")
    assert row["change"] == 100 and math.isnan(row["change_pct"])


@pytest.mark.parametrize(
    ("value", "base", "expected"),
    [(120, 100, 20.0), (80, 100, -20.0), (100, -50, 300.0), (-100, -50, -100.0), (5, 0, NAN), (NAN, 1, NAN)],
)
def test_change_pct(value: float, base: float, expected: float) -> None:
    assert change_pct(value, base) == pytest.approx(expected, nan_ok=True)


def weekly(ends: list[str], revenue: float = 700.0) -> pd.DataFrame:
    rows = [(day, revenue, NAN, NAN, NAN, NAN, NAN, NAN, "week") for day in ends]
    return frame(rows)


def test_weekly_rows_tiling_an_iso_week_are_exact() -> None:
    table = compute_kpis(weekly(["2024-03-03", "2024-03-10"]), WEEK_10).set_index("kpi")
    assert table.loc["revenue", ["value", "previous"]].tolist() == [700, 700]
    assert not table.loc["revenue", "approximate"]
    assert math.isnan(table.loc["aov", "value"])  # no orders in aggregate-only data


def test_weekly_rows_in_a_month_are_summed_by_week_end_and_flagged() -> None:
    fridays = ["2024-03-01", "2024-03-08", "2024-03-15", "2024-03-22", "2024-03-29", "2024-04-05"]
    totals = comparison_totals(weekly(fridays), parse_period("2024-03", today=dt.date(2024, 5, 1)))
    assert totals.loc["current", "revenue"] == 5 * 700  # week ends 1, 8, 15, 22, 29 March
    assert totals.loc["current", "weekly_rows"] == 5
    assert bool(totals.loc["current", "approximate"])
    table = kpis_from_totals(totals)
    assert table["approximate"].all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["orders"]), "missing columns \\['orders'\\]"),
        (lambda f: pd.concat([f, f.iloc[[1]]]), "share a \\(store, day\\).*2024-03-04"),
        (lambda f: f.assign(orders=f["orders"] - 5), "'orders' has 2 negative values"),
        (lambda f: f.assign(returns=-f["returns"]), "'returns' has 3 negative values"),
        (lambda f: f.assign(grain="month"), "expected only 'day' or 'week'"),
        (lambda f: f.assign(day="soon"), "not dates"),
        (lambda f: f.assign(revenue="lots"), "'revenue' has values that are not numbers"),
        (lambda f: f.assign(units=f["units"] / (f["orders"] - 4)), "'units' has 1 infinite values"),
        (lambda f: pd.concat([f, weekly(["2024-03-06"])]), "daily row on 2024-03-04 inside the week ending 2024-03-06"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(change: object, message: str) -> None:
    bad = change(BASIC)  # type: ignore[operator]
    with pytest.raises(DataValidationError, match=message):
        compute_kpis(bad, WEEK_10)


def test_frame_without_grain_is_daily() -> None:
    pd.testing.assert_frame_equal(compute_kpis(BASIC.drop(columns=["grain"]), WEEK_10), compute_kpis(BASIC, WEEK_10))


def test_kpis_from_totals_without_comparisons() -> None:
    totals = comparison_totals(BASIC, WEEK_10).loc[["current"]]
    table = kpis_from_totals(totals)
    assert kpi_row(table, "revenue")["value"] == 300
    assert np.isnan(table["previous"].to_numpy()).all()


# --- warehouse loaders (SQLite file and real PostgreSQL) ---------------------------------------------------------

LINES = [  # day, order, customer, sku, quantity, unit price, unit cost, discount
    ("2024-02-27", "o0", "c3", "A", 2, 100.0, 60.0, 0.0),
    ("2024-03-04", "o1", "c1", "A", 1, 100.0, 60.0, 0.0),
    ("2024-03-04", "o1", "c1", "B", 2, 10.0, 4.0, 5.0),
    ("2024-03-05", "o2", "c1", "B", 3, 10.0, 4.0, 0.0),
    ("2024-03-05", "o3", "c2", "A", -1, 100.0, 60.0, 0.0),
]
DAILY_S1 = [  # the refresh's sums of LINES: day, revenue, orders, units, customers, cost, margin, returns, return_units
    ("2024-02-27", 200.0, 1, 2, 1, 120.0, 80.0, 0.0, 0),
    ("2024-03-04", 115.0, 1, 3, 1, 68.0, 47.0, 0.0, 0),
    ("2024-03-05", -70.0, 1, 2, 2, -48.0, -22.0, 100.0, 1),
]
METRIC_NAMES = ["revenue", "orders", "units", "customers", "cost", "margin", "returns", "return_units"]


@pytest.fixture
def filled(warehouse: Engine) -> Engine:
    with warehouse.begin() as conn:
        conn.execute(stores.insert(), [{"code": "S1", "name": "One"}, {"code": "W1", "name": "Weekly"}])
        conn.execute(
            products.insert(),
            [
                {"sku": "A", "name": "Phone", "category": "Electronics"},
                {"sku": "B", "name": "Bread", "category": "Grocery"},
            ],
        )
        conn.execute(
            import_batches.insert().values(batch_id=1, kind="demo", source="test", loaded_at=dt.datetime.now())
        )
        conn.execute(
            order_lines.insert(),
            [
                dict(
                    zip(
                        ["day", "order_id", "customer_id", "sku", "quantity", "unit_price", "unit_cost", "discount"],
                        (dt.date.fromisoformat(line[0]), *line[1:]),
                        strict=True,
                    ),
                    store_code="S1",
                    ordered_at=dt.datetime.fromisoformat(line[0] + "T10:00"),
                    batch_id=1,
                )
                for line in LINES
            ],
        )
        daily = [
            dict(zip(["day", *METRIC_NAMES], (dt.date.fromisoformat(r[0]), *r[1:]), strict=True))
            | {"store_code": "S1", "grain": "day", "source": "order_lines", "batch_id": 1}
            for r in DAILY_S1
        ]
        weekly = [
            {"store_code": "W1", "day": dt.date(2024, 3, day), "grain": "week", "revenue": rev, "source": "import"}
            for day, rev in [(1, 700.0), (8, 800.0)]
        ]
        conn.execute(daily_metrics.insert(), daily)
        conn.execute(daily_metrics.insert(), weekly)
    return warehouse


def test_period_totals_count_distinct_customers_in_sql(filled: Engine) -> None:
    totals = load_period_totals(filled, store="S1", start=dt.date(2024, 3, 4), end=dt.date(2024, 3, 10))
    assert totals[METRIC_NAMES].astype(float).tolist() == [45.0, 2.0, 5.0, 2.0, 20.0, 25.0, 100.0, 1.0]
    assert totals["customers_exact"] and not totals["approximate"]
    assert (totals["rows"], totals["weekly_rows"], totals["label"]) == (2, 0, "2024-W10")
    # the same rows summed in pandas count c1 twice (once per day)
    daily = load_daily_metrics(filled, stores=["S1"])
    assert comparison_totals(daily, WEEK_10).loc["current", "customers"] == 3


def test_aggregate_only_store_falls_back_and_matches_the_pandas_path(filled: Engine) -> None:
    period = Period(dt.date(2024, 3, 1), dt.date(2024, 3, 10), "2024-03-01:2024-03-10")
    from_sql = load_comparison_totals(filled, store="W1", period=period)
    from_frame = comparison_totals(load_daily_metrics(filled, stores=["W1"]), period)
    assert from_sql.loc["current", "revenue"] == 1500
    assert bool(from_sql.loc["current", "approximate"]) and not bool(from_sql.loc["current", "customers_exact"])
    assert math.isnan(from_sql.loc["current", "orders"])
    pd.testing.assert_frame_equal(from_sql, from_frame)


def test_loaded_totals_feed_the_kpi_table(filled: Engine) -> None:
    table = kpis_from_totals(load_comparison_totals(filled, store="S1", period=WEEK_10)).set_index("kpi")
    assert table.loc["customers", ["value", "previous"]].tolist() == [2, 1]
    assert not table.loc["customers", "approximate"]
    assert table.loc["revenue", ["value", "previous", "change"]].tolist() == [45, 200, -155]
    assert table.loc["return_rate", "value"] == pytest.approx(100 / 145 * 100)
    assert table["last_year"].isna().all()


def test_category_revenue_and_comparison(filled: Engine) -> None:
    current = load_category_revenue(filled, store="S1", start=dt.date(2024, 3, 4), end=dt.date(2024, 3, 10))
    assert current.to_dict("list") == {"category": ["Grocery", "Electronics"], "revenue": [45.0, 0.0]}
    both = load_category_comparison(filled, store="S1", period=WEEK_10)
    assert both.to_dict("list") == {
        "category": ["Grocery", "Electronics"],
        "revenue": [45.0, 0.0],
        "previous": [0.0, 200.0],
    }
    assert load_category_comparison(filled, store="W1", period=WEEK_10).empty
