"""The demo generator: deterministic, realistic enough for the analyses' tests, one transaction, and its CLI."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, Table, func, select

from report_lib.cli import main
from report_lib.errors import ConfigError, WarehouseError
from report_lib.warehouse import schema
from report_lib.warehouse.demo import DemoSummary, affinity_groups, affinity_pairs, generate_demo, holidays
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema

END = dt.date(2024, 6, 30)
SMALL = {"stores": 3, "days": 120, "seed": 42, "end": END}
FIRST = END - dt.timedelta(days=SMALL["days"] - 1)
LINE_COLUMNS = ["store_code", "order_id", "ordered_at", "day", "customer_id", "sku", "quantity", "unit_price",
                "unit_cost", "discount"]  # fmt: skip


def read(engine: Engine, table: Table, *columns: str) -> pd.DataFrame:
    """A whole table (or some columns) as a DataFrame, rows in primary-key order."""
    selected = [table.c[name] for name in columns] if columns else list(table.c)
    query = select(*selected).order_by(*(table.primary_key.columns or selected))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=[column.name for column in selected])


def sale_orders_per_day(lines: pd.DataFrame) -> pd.DataFrame:
    sales = lines[lines["quantity"] > 0]
    return sales.groupby(["store_code", "day"])["order_id"].nunique().rename("orders").reset_index()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, DemoSummary]]:
    """3 stores x 120 days on SQLite, generated once for the read-only tests."""
    engine = create_warehouse_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'warehouse.db'}")
    ensure_schema(engine)
    yield engine, generate_demo(engine, **SMALL)
    engine.dispose()


@pytest.fixture(scope="module")
def lines(small: tuple[Engine, DemoSummary]) -> pd.DataFrame:
    frame = read(small[0], schema.order_lines, *LINE_COLUMNS)
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


# --- what was written ---


def test_summary_matches_the_tables_and_the_period(small: tuple[Engine, DemoSummary], lines: pd.DataFrame) -> None:
    engine, summary = small
    with engine.connect() as conn:
        counts = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                schema.stores,
                schema.products,
                schema.customers,
                schema.orders,
                schema.order_lines,
                schema.planted_anomalies,
                schema.inventory_snapshots,
            )
        }
        batches = conn.execute(select(schema.import_batches)).mappings().all()
    assert counts == {
        "stores": 3,
        "products": summary.products,
        "customers": summary.customers,
        "orders": summary.orders,
        "order_lines": summary.lines,
        "planted_anomalies": summary.anomalies,
        "inventory_snapshots": 3 * summary.products,
    }
    assert 150 <= summary.products <= 250
    assert (summary.first_day, summary.last_day) == (FIRST, END)
    assert (lines["day"].min().date(), lines["day"].max().date()) == (FIRST, END)
    assert [(b["kind"], b["source"], b["rows_loaded"]) for b in batches] == [
        ("demo", "demo seed=42 stores=3 days=120 end=2024-06-30 scale=1", summary.lines)
    ]
    assert set(read(engine, schema.order_lines, "batch_id")["batch_id"]) == {batches[0]["batch_id"]}


def test_stores_have_codes_regions_managers_and_trends(small: tuple[Engine, DemoSummary]) -> None:
    stores = read(small[0], schema.stores)
    assert list(stores["code"]) == ["S01", "S02", "S03"]
    assert stores["name"].is_unique
    assert set(stores["region"]) <= {"North", "East", "South", "West"}
    assert all(
        f"manager.{code.lower()}@example.com" in emails
        for code, emails in zip(stores["code"], stores["manager_emails"], strict=True)
    )
    assert all(1 <= len(emails) <= 2 for emails in stores["manager_emails"])
    assert (stores["opened_on"] < FIRST).all()


def test_day_is_the_date_of_ordered_at_within_opening_hours(lines: pd.DataFrame) -> None:
    stamps = pd.to_datetime(lines["ordered_at"])
    assert (stamps.dt.normalize() == lines["day"]).all()
    assert stamps.dt.hour.between(8, 20).all()
    by_hour = stamps.dt.hour.value_counts()
    assert by_hour[12] > 2 * by_hour[8]  # lunchtime peak


def test_order_lines_reference_orders_and_orders_have_lines(
    small: tuple[Engine, DemoSummary], lines: pd.DataFrame
) -> None:
    orders = read(small[0], schema.orders, "store_code", "order_id", "customer_id")
    assert set(zip(orders["store_code"], orders["order_id"], strict=True)) == set(
        zip(lines["store_code"], lines["order_id"], strict=True)
    )


# --- realism the analyses test against ---


def test_weekends_are_busier_than_weekdays(lines: pd.DataFrame) -> None:
    daily = sale_orders_per_day(lines)
    weekday = daily["day"].dt.day_of_week
    for code, store in daily.groupby("store_code"):
        store_weekday = weekday[store.index]
        weekend_mean = store.loc[store_weekday >= 5, "orders"].mean()
        midweek_mean = store.loc[store_weekday <= 3, "orders"].mean()
        assert weekend_mean > 1.15 * midweek_mean, code


def test_affinity_pairs_cooccur_far_above_chance(lines: pd.DataFrame) -> None:
    baskets = lines.loc[lines["quantity"] > 0, ["store_code", "order_id", "sku"]].drop_duplicates()
    baskets = baskets.assign(basket=baskets["store_code"] + "/" + baskets["order_id"])
    members = baskets.groupby("sku")["basket"].agg(set)
    total = baskets["basket"].nunique()

    def lift(a: str, b: str) -> float:
        return total * len(members[a] & members[b]) / (len(members[a]) * len(members[b]))

    planted = set(affinity_pairs())
    assert min(lift(a, b) for a, b in planted) > 2
    popular = list(members[members.map(len) >= 200].index)
    others = [lift(a, b) for a, b in itertools.combinations(sorted(popular), 2) if (a, b) not in planted]
    assert len(others) > 100
    assert np.median(others) < 1.5  # unplanted pairs are near independence, so the test above can fail


def test_affinity_pairs_are_sorted_pairs_of_the_groups(small: tuple[Engine, DemoSummary]) -> None:
    groups, pairs = affinity_groups(), affinity_pairs()
    skus = set(read(small[0], schema.products, "sku")["sku"])
    assert len(groups) == 20
    assert {len(group) for group in groups} == {2, 3}
    assert len(pairs) == sum(math.comb(len(group), 2) for group in groups) == len(set(pairs))
    assert all(a < b and {a, b} <= skus for a, b in pairs)
    assert ("GRO-01B", "GRO-03B") in pairs  # spaghetti and tomato pasta sauce


def test_returns_come_back_later_as_negative_lines_of_a_sale(lines: pd.DataFrame) -> None:
    returns = lines[lines["quantity"] < 0]
    sales = lines[lines["quantity"] > 0]
    assert 0.01 < len(returns) / len(lines) < 0.03
    assert returns["order_id"].str.match(r"^RS\d\d-\d{6}$").all()
    assert not sales["order_id"].str.startswith("R").any()
    candidates = returns.reset_index().merge(sales, on=["store_code", "sku", "unit_price"], suffixes=("", "_sale"))
    delay = (candidates["day"] - candidates["day_sale"]).dt.days
    matched = candidates[delay.between(1, 11) & (candidates["quantity_sale"] >= -candidates["quantity"])]
    assert matched["index"].nunique() == len(returns)


def test_customers_are_identified_on_most_orders_and_have_personas(
    small: tuple[Engine, DemoSummary], lines: pd.DataFrame
) -> None:
    customers = read(small[0], schema.customers)
    orders = lines[lines["quantity"] > 0].drop_duplicates(["store_code", "order_id"])
    assert 0.66 < orders["customer_id"].notna().mean() < 0.74
    assert customers["customer_id"].str.match(r"^C\d{6}$").all()
    seen = (
        orders.dropna(subset=["customer_id"])
        .groupby("customer_id")
        .agg(first=("day", "min"), last=("day", "max"), stores=("store_code", "unique"), orders=("order_id", "size"))
    )
    merged = customers.set_index("customer_id").join(seen, how="outer")
    assert (pd.to_datetime(merged["first_seen"]) == merged["first"]).all()
    assert all(list(stores) == [home] for stores, home in zip(merged["stores"], merged["home_store"], strict=True))
    assert (merged["first"] >= pd.Timestamp(END - dt.timedelta(days=59))).sum() > 50  # new customers
    assert (merged["last"] < pd.Timestamp(FIRST + dt.timedelta(days=60))).sum() > 50  # lapsed customers
    assert merged["orders"].max() > 8 * merged["orders"].median()  # frequent shoppers


def test_prices_change_some_products_lose_money_and_promotions_discount(
    small: tuple[Engine, DemoSummary], lines: pd.DataFrame
) -> None:
    products = read(small[0], schema.products).set_index("sku")
    sales = lines[lines["quantity"] > 0]
    prices = sales.sort_values("ordered_at").groupby("sku")["unit_price"].agg(["nunique", "last"])
    assert prices["nunique"].max() == 2
    assert 10 <= (prices["nunique"] == 2).sum() <= 40
    assert (prices["last"] == products.loc[prices.index, "unit_price"]).all()
    assert 1 <= (products["unit_cost"] > products["unit_price"]).sum() <= 10
    assert (products["unit_cost"] < products["unit_price"]).mean() > 0.9
    assert products["category"].nunique() == 8
    discounted = sales[sales["discount"] > 0]
    assert 0.01 < len(discounted) / len(sales) < 0.2
    assert (discounted["discount"] < discounted["quantity"] * discounted["unit_price"]).all()


def test_inventory_has_stock_alerts_and_stock_outs(small: tuple[Engine, DemoSummary], lines: pd.DataFrame) -> None:
    stock = read(small[0], schema.inventory_snapshots)
    assert (stock["as_of"] == END).all()
    below = stock["on_hand"] < stock["reorder_point"]
    assert 0.03 < below.mean() < 0.15
    out = stock[stock["on_hand"] == 0]
    assert 3 <= len(out) <= 9
    recent = lines[(lines["day"] > pd.Timestamp(END - dt.timedelta(days=3))) & (lines["quantity"] > 0)]
    sold = set(zip(recent["store_code"], recent["sku"], strict=True))
    assert not sold & set(zip(out["store_code"], out["sku"], strict=True))  # out of stock: no sales lately


def test_planted_anomalies_move_the_order_count(small: tuple[Engine, DemoSummary], lines: pd.DataFrame) -> None:
    planted = read(small[0], schema.planted_anomalies)
    planted["day"] = pd.to_datetime(planted["day"])
    assert planted.groupby("store_code").size().between(1, 2).all()
    assert (planted["day"] >= pd.Timestamp(FIRST + dt.timedelta(days=60))).all()
    assert not set(planted["day"].dt.date) & set(holidays(FIRST, END))
    daily = sale_orders_per_day(lines)
    daily["weekday"] = daily["day"].dt.day_of_week
    for row in planted.itertuples():
        store = daily[daily["store_code"] == row.store_code]
        same_weekday = store[(store["weekday"] == row.day.day_of_week) & (store["day"] != row.day)]
        count = store.loc[store["day"] == row.day, "orders"].item()
        ratio = count / same_weekday["orders"].median()
        if row.kind == "spike":
            assert 2.5 <= row.factor <= 3.5 and ratio > 1.8, row
        else:
            assert 0.15 <= row.factor <= 0.35 and ratio < 0.5, row


def test_christmas_day_is_closed(sqlite_warehouse: Engine) -> None:
    generate_demo(sqlite_warehouse, stores=1, days=28, seed=5, end=dt.date(2023, 12, 31))
    days = read(sqlite_warehouse, schema.order_lines, "day")["day"]
    assert dt.date(2023, 12, 25) not in set(days)
    assert {dt.date(2023, 12, 24), dt.date(2023, 12, 26)} <= set(days)


# --- determinism, replacement, refusal, atomicity ---


def test_same_seed_gives_identical_rows_and_another_seed_does_not(sqlite_warehouse: Engine) -> None:
    options = {"stores": 2, "days": 75, "end": END}

    def generated(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        generate_demo(sqlite_warehouse, seed=seed, **options)  # type: ignore[arg-type]
        return read(sqlite_warehouse, schema.order_lines, *LINE_COLUMNS), read(
            sqlite_warehouse, schema.planted_anomalies
        )

    lines, planted = generated(7)
    assert len(lines) > 10_000 and len(planted) >= 2
    again_lines, again_planted = generated(7)
    pd.testing.assert_frame_equal(again_lines, lines)
    pd.testing.assert_frame_equal(again_planted, planted)
    other_lines, other_planted = generated(8)
    assert len(other_lines) != len(lines) or not other_lines["sku"].equals(lines["sku"])
    assert not other_planted.equals(planted)


def test_a_rerun_replaces_demo_data_and_derived_tables(sqlite_warehouse: Engine) -> None:
    generate_demo(sqlite_warehouse, stores=2, days=40, seed=1, end=END)
    with sqlite_warehouse.begin() as conn:
        conn.execute(schema.daily_metrics.insert().values(store_code="S02", day=END, source="order_lines"))
        conn.execute(
            schema.refresh_state.insert().values(name="daily", last_batch_id=1, refreshed_at=dt.datetime.now())
        )
    summary = generate_demo(sqlite_warehouse, stores=1, days=30, seed=2, end=END)
    with sqlite_warehouse.connect() as conn:
        assert conn.execute(select(schema.stores.c.code)).scalars().all() == ["S01"]
        assert conn.execute(select(func.count()).select_from(schema.order_lines)).scalar_one() == summary.lines
        assert conn.execute(select(schema.import_batches.c.source)).scalars().all() == [
            "demo seed=2 stores=1 days=30 end=2024-06-30 scale=1"
        ]
        assert conn.execute(select(func.count()).select_from(schema.daily_metrics)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(schema.refresh_state)).scalar_one() == 0


def _add_imported_batch(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            schema.import_batches.insert().values(kind="lines", source="sales.csv", loaded_at=dt.datetime.now())
        )


def test_imported_data_is_refused_unless_forced(sqlite_warehouse: Engine) -> None:
    _add_imported_batch(sqlite_warehouse)
    with pytest.raises(WarehouseError, match=r"holds imported data .*--force"):
        generate_demo(sqlite_warehouse, stores=1, days=28, end=END)
    assert read(sqlite_warehouse, schema.import_batches, "kind")["kind"].tolist() == ["lines"]
    assert read(sqlite_warehouse, schema.stores).empty
    generate_demo(sqlite_warehouse, stores=1, days=28, end=END, force=True)
    assert read(sqlite_warehouse, schema.import_batches, "kind")["kind"].tolist() == ["demo"]


def test_a_failure_midway_leaves_the_warehouse_as_it_was(sqlite_warehouse: Engine) -> None:
    first = generate_demo(sqlite_warehouse, stores=1, days=28, seed=1, end=END)
    before = read(sqlite_warehouse, schema.order_lines)

    def fail_after_first_store(done: int, total: int) -> None:
        assert total == 2
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        generate_demo(sqlite_warehouse, stores=2, days=28, seed=2, end=END, on_progress=fail_after_first_store)
    pd.testing.assert_frame_equal(read(sqlite_warehouse, schema.order_lines), before)
    assert len(before) == first.lines


def test_progress_reports_each_store(sqlite_warehouse: Engine) -> None:
    calls: list[tuple[int, int]] = []
    generate_demo(
        sqlite_warehouse, stores=3, days=28, end=END, on_progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("scale", [0.001, 0.05])
def test_a_tiny_volume_still_writes_consistent_rows(sqlite_warehouse: Engine, scale: float) -> None:
    """Days without orders and stores without returns (empty arrays all the way through) are fine."""
    summary = generate_demo(sqlite_warehouse, stores=2, days=28, scale=scale, end=END)
    lines = read(sqlite_warehouse, schema.order_lines, "order_id", "quantity")
    orders = read(sqlite_warehouse, schema.orders, "order_id")
    assert len(lines) == summary.lines
    assert 0 < summary.lines < 20_000 * scale  # about 7,500 x scale expected: the volume follows scale
    assert set(orders["order_id"]) == set(lines["order_id"])
    assert (lines["quantity"] < 0).sum() == summary.return_lines


def test_end_defaults_to_yesterday(sqlite_warehouse: Engine) -> None:
    summary = generate_demo(sqlite_warehouse, stores=1, days=28)
    assert summary.last_day == dt.date.today() - dt.timedelta(days=1)
    assert summary.first_day == summary.last_day - dt.timedelta(days=27)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"stores": 0}, "stores is 0; expected 1 to 500"),
        ({"stores": 501}, "stores is 501"),
        ({"days": 27}, "days is 27; expected 28 to 3650"),
        ({"days": 3651}, "days is 3651"),
        ({"scale": 0.0}, "scale is 0.0"),
        ({"scale": float("nan")}, "scale is nan"),
    ],
)
def test_arguments_out_of_range_are_refused(sqlite_warehouse: Engine, options: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        generate_demo(sqlite_warehouse, **options)  # type: ignore[arg-type]


# --- both databases ---


def test_generates_and_replaces_on_sqlite_and_postgresql(warehouse: Engine) -> None:
    generate_demo(warehouse, stores=2, days=30, seed=3, end=END)
    summary = generate_demo(warehouse, stores=2, days=45, seed=4, end=END)  # replaces (TRUNCATE on PostgreSQL)
    lines = read(warehouse, schema.order_lines, "day", "ordered_at", "quantity")
    assert len(lines) == summary.lines
    assert min(lines["day"]) == END - dt.timedelta(days=44)
    assert all(stamp.date() == day for stamp, day in zip(lines["ordered_at"], lines["day"], strict=True))
    assert (lines["quantity"] < 0).sum() == summary.return_lines > 0
    stores = read(warehouse, schema.stores)
    assert stores["manager_emails"].map(lambda emails: emails[0]).tolist() == [
        "manager.s01@example.com",
        "manager.s02@example.com",
    ]


# --- the command line ---


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tmp SQLite warehouse for main(); afterwards the log handlers main() installed are closed and removed."""
    monkeypatch.chdir(tmp_path)  # logs/ and any .env are looked up here
    database = tmp_path / "cli.db"
    monkeypatch.setenv("REPORT_DATABASE_URL", f"sqlite:///{database}")
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield database
    for handler in root.handlers:
        if handler not in saved_handlers:
            handler.close()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_demo_command_generates_refreshes_and_summarises(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = cli_env
    assert main(["demo", "--stores", "2", "--days", "30", "--seed", "9", "--end", "2024-06-30"]) == 0
    out = capsys.readouterr().out
    assert f"demo warehouse: sqlite:///{database}" in out
    assert "stores 2" in out and "days 30 (2024-06-01 to 2024-06-30)" in out
    assert "anomalies planted" in out and "daily metrics:" in out
    engine = create_warehouse_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        days = conn.execute(select(func.count()).select_from(schema.daily_metrics)).scalar_one()
    engine.dispose()
    assert days == 2 * 30


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stores", "0"], "--stores is 0; expected a number from 1 to 500"),
        (["--days", "10"], "--days is 10; expected a number from 28"),
        (["--end", "30/06/2024"], "--end is '30/06/2024'; expected a date as YYYY-MM-DD"),
    ],
)
def test_demo_command_rejects_bad_arguments(
    argv: list[str], message: str, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", *argv]) == 2
    assert message in capsys.readouterr().err
