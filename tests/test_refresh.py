"""daily_metrics refresh: hand-computed store-days, imported rows left alone, incremental == full (property)."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from report_lib.config import Settings
from report_lib.errors import WarehouseError
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.refresh import RefreshResult, refresh_daily_metrics
from report_lib.warehouse.schema import daily_metrics, import_batches, order_lines, products, refresh_state, stores

DAY1 = dt.date(2024, 3, 1)
DAY2 = dt.date(2024, 3, 2)
METRICS = ("revenue", "orders", "units", "customers", "cost", "margin", "returns", "return_units")
Line = dict[str, Any]


def line(store: str, day: dt.date, order: str, customer: str | None, qty: int, price: float, **extra: Any) -> Line:
    """One order line; ``cost`` (unit cost, None = unknown), ``discount`` and ``sku`` go in ``extra``."""
    return {
        "store_code": store,
        "order_id": order,
        "ordered_at": dt.datetime.combine(day, dt.time(10, 0)),
        "day": day,
        "customer_id": customer,
        "sku": extra.get("sku", "X"),
        "quantity": qty,
        "unit_price": price,
        "unit_cost": extra.get("cost"),
        "discount": extra.get("discount", 0.0),
    }


def seed_reference(engine: Engine, store_codes: Sequence[str] = ("A", "B", "C")) -> None:
    with engine.begin() as conn:
        conn.execute(stores.insert(), [{"code": code, "name": f"Store {code}"} for code in store_codes])
        conn.execute(products.insert(), [{"sku": sku, "name": sku} for sku in ("X", "Y", "Z")])


def add_batch(engine: Engine, batch_id: int, lines: Sequence[Line], *, kind: str = "lines") -> None:
    """An import batch row with explicit id, and its lines."""
    with engine.begin() as conn:
        conn.execute(
            import_batches.insert().values(
                batch_id=batch_id, kind=kind, source=f"test batch {batch_id}", loaded_at=dt.datetime(2024, 4, 1)
            )
        )
        if lines:
            conn.execute(order_lines.insert(), [{**row, "batch_id": batch_id} for row in lines])


def add_imported_total(engine: Engine, store: str, day: dt.date, batch_id: int, *, revenue: float) -> None:
    add_batch(engine, batch_id, [], kind="daily")
    with engine.begin() as conn:
        conn.execute(
            daily_metrics.insert().values(
                store_code=store, day=day, grain="day", revenue=revenue, orders=7, source="import", batch_id=batch_id
            )
        )


def metrics_table(engine: Engine) -> dict[tuple[str, dt.date], dict[str, Any]]:
    """daily_metrics keyed by (store, day); values as plain Python (dates normalised across dialects)."""
    with engine.connect() as conn:
        rows = conn.execute(select(daily_metrics).order_by(daily_metrics.c.store_code, daily_metrics.c.day)).mappings()
        return {(row["store_code"], row["day"]): dict(row) for row in rows}


def state(engine: Engine) -> tuple[int, dt.datetime] | None:
    with engine.connect() as conn:
        row = conn.execute(select(refresh_state.c.last_batch_id, refresh_state.c.refreshed_at)).one_or_none()
    return None if row is None else (row[0], row[1])


# Day 1, store A: two orders (one anonymous), a discount, a return by another customer; every cost known.
#   o1 c1: 2 x X @10 cost 6          -> 20.0, cost 12
#   o1 c1: 1 x Y @5 cost 3 disc 1    ->  4.0, cost  3
#   o2 --: 1 x X @10 cost 6          -> 10.0, cost  6
#   r1 c2: -1 x X @10 cost 6         -> -10.0, cost -6
# Day 2, store A: one order, one line without a cost -> cost and margin unknown.
#   o3 c1: 3 x X @10 cost 6          -> 30.0
#   o3 c1: 1 x Z @8 (no cost) disc .5 -> 7.5
# Day 1, store B: a lone anonymous return.
#   r2 --: -2 x X @5 cost 2          -> -10.0, cost -4
REFERENCE_LINES = [
    line("A", DAY1, "o1", "c1", 2, 10.0, cost=6.0),
    line("A", DAY1, "o1", "c1", 1, 5.0, cost=3.0, discount=1.0, sku="Y"),
    line("A", DAY1, "o2", None, 1, 10.0, cost=6.0),
    line("A", DAY1, "r1", "c2", -1, 10.0, cost=6.0),
    line("A", DAY2, "o3", "c1", 3, 10.0, cost=6.0),
    line("A", DAY2, "o3", "c1", 1, 8.0, discount=0.5, sku="Z"),
    line("B", DAY1, "r2", None, -2, 5.0, cost=2.0),
]
EXPECTED = {  # revenue, orders, units, customers, cost, margin, returns, return_units
    ("A", DAY1): (24.0, 2, 3, 2, 15.0, 9.0, 10.0, 1),
    ("A", DAY2): (37.5, 1, 4, 1, None, None, 0.0, 0),
    ("B", DAY1): (-10.0, 0, -2, 0, -4.0, -6.0, 10.0, 2),
}


@pytest.fixture
def reference(warehouse: Engine) -> Engine:
    seed_reference(warehouse)
    add_batch(warehouse, 1, REFERENCE_LINES[:4])
    add_batch(warehouse, 2, REFERENCE_LINES[4:])
    return warehouse


def test_known_daily_totals_value_by_value(reference: Engine) -> None:
    result = refresh_daily_metrics(reference)
    assert (result.mode, result.days_recomputed, result.rows_written, result.batches) == ("full", 3, 3, 2)
    table = metrics_table(reference)
    assert set(table) == set(EXPECTED)
    for key, expected in EXPECTED.items():
        row = table[key]
        assert (row["source"], row["grain"]) == ("order_lines", "day")
        for name, want in zip(METRICS, expected, strict=True):
            assert row[name] == (None if want is None else pytest.approx(want)), (key, name)
    assert {key: row["batch_id"] for key, row in table.items()} == {("A", DAY1): 1, ("A", DAY2): 2, ("B", DAY1): 2}


def test_late_line_recomputes_only_its_day(reference: Engine) -> None:
    refresh_daily_metrics(reference)
    # A late sale for day 1 of store A by a new customer: 2 x Y @5 cost 3, arrives in batch 3.
    add_batch(reference, 3, [line("A", DAY1, "o9", "c3", 2, 5.0, cost=3.0, sku="Y")])
    result = refresh_daily_metrics(reference)
    assert (result.mode, result.days_recomputed, result.rows_written, result.batches) == ("incremental", 1, 1, 1)
    table = metrics_table(reference)
    late = table[("A", DAY1)]
    assert tuple(late[name] for name in METRICS) == pytest.approx((34.0, 3, 5, 3, 21.0, 13.0, 10.0, 1))
    assert late["batch_id"] == 3
    assert table[("A", DAY2)]["batch_id"] == 2  # untouched day keeps its row
    assert state(reference) is not None and state(reference)[0] == 3  # type: ignore[index]


def test_up_to_date_is_a_no_op(reference: Engine) -> None:
    refresh_daily_metrics(reference)
    before, state_before = metrics_table(reference), state(reference)
    add_batch(reference, 3, [], kind="daily")  # a batch without order lines changes nothing
    result = refresh_daily_metrics(reference)
    assert (result.mode, result.days_recomputed, result.rows_written, result.batches) == ("up to date", 0, 0, 0)
    assert metrics_table(reference) == before
    assert state(reference) == state_before


def test_imported_rows_are_never_overwritten(reference: Engine) -> None:
    add_imported_total(reference, "A", DAY2, 10, revenue=999.0)  # imported totals for a day that also has lines
    add_imported_total(reference, "C", DAY1, 11, revenue=5.0)  # a store known only from imported totals
    first = refresh_daily_metrics(reference)
    assert (first.days_recomputed, first.rows_written) == (3, 2)
    add_batch(reference, 12, [line("A", DAY2, "o10", "c1", 1, 10.0, cost=6.0)])  # a late line on the imported day
    second = refresh_daily_metrics(reference)
    assert (second.mode, second.days_recomputed, second.rows_written) == ("incremental", 1, 0)
    full = refresh_daily_metrics(reference, full=True)
    assert (full.mode, full.days_recomputed, full.rows_written, full.batches) == ("full", 3, 2, 0)  # no new batch
    table = metrics_table(reference)
    for key, revenue in ((("A", DAY2), 999.0), (("C", DAY1), 5.0)):
        assert (table[key]["source"], table[key]["revenue"], table[key]["orders"]) == ("import", revenue, 7)
    assert table[("A", DAY1)]["source"] == "order_lines"


def test_full_rebuild_equals_incremental_and_keeps_state(reference: Engine) -> None:
    refresh_daily_metrics(reference)
    incremental = metrics_table(reference)
    result = refresh_daily_metrics(reference, full=True)
    assert (result.mode, result.rows_written) == ("full", 3)
    assert metrics_table(reference) == incremental
    assert state(reference) is not None and state(reference)[0] == 2  # type: ignore[index]


def test_empty_warehouse_refreshes_to_nothing(warehouse: Engine) -> None:
    result = refresh_daily_metrics(warehouse)
    assert (result.mode, result.days_recomputed, result.rows_written, result.batches) == ("full", 0, 0, 0)
    assert refresh_daily_metrics(warehouse).mode == "up to date"


def test_lines_of_an_unknown_store_are_refused_with_the_store_named(sqlite_warehouse: Engine) -> None:
    seed_reference(sqlite_warehouse, ("A",))
    add_batch(sqlite_warehouse, 1, [line("A", DAY1, "o1", None, 1, 1.0), line("ZZ", DAY1, "o2", None, 1, 1.0)])
    with pytest.raises(WarehouseError, match=r"missing from the stores table: \['ZZ'\]"):
        refresh_daily_metrics(sqlite_warehouse)
    assert metrics_table(sqlite_warehouse) == {}
    assert state(sqlite_warehouse) is None


def test_missing_schema_says_what_to_do(sqlite_url: str) -> None:
    engine = create_warehouse_engine(sqlite_url)
    with pytest.raises(WarehouseError, match=r"runner\.py demo"):
        refresh_daily_metrics(engine)
    engine.dispose()


def test_summary_lines() -> None:
    assert RefreshResult("up to date", 0, 0, 0, 0.01).summary() == "daily_metrics up to date (0.01 s)"
    assert RefreshResult("incremental", 3, 2, 1, 0.5).summary() == (
        "daily_metrics incremental refresh: 3 store-days recomputed from 1 new batch(es), 2 rows written, "
        "1 skipped (imported totals) in 0.50 s"
    )


def test_cli_refresh_prints_one_line(reference: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    from report_lib.cli import build_parser

    args = build_parser().parse_args(["refresh", "--full"])
    assert isinstance(args, argparse.Namespace) and args.full is True
    url = reference.url.render_as_string(hide_password=False)
    assert args.handler(args, Settings(database_url=url)) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("daily_metrics full refresh: 3 store-days recomputed")
    assert args.handler(build_parser().parse_args(["refresh"]), Settings(database_url=url)) == 0
    assert capsys.readouterr().out.startswith("daily_metrics up to date")


# --- incremental after every batch == one full rebuild -------------------------------------------------------------

BASE_DAY = dt.date(2024, 1, 1)
PROPERTY_LINE = st.builds(
    lambda store, day, order, customer, qty, price, cost, discount: line(
        store, BASE_DAY + dt.timedelta(days=day), f"o{order}", customer, qty, price, cost=cost, discount=discount
    ),
    st.sampled_from(["A", "B"]),
    st.integers(0, 4),
    st.integers(0, 5),
    st.sampled_from([None, "c1", "c2", "c3"]),
    st.integers(-3, 5).filter(bool),
    st.sampled_from([1.0, 2.5, 10.0]),
    st.sampled_from([None, 0.5, 4.0]),
    st.sampled_from([0.0, 0.25]),
)
BATCHES = st.lists(st.lists(PROPERTY_LINE, max_size=6), min_size=1, max_size=5)


def assert_incremental_matches_full(engine: Engine, batches: Sequence[Sequence[Line]]) -> None:
    """Load batches one by one, refreshing after each; then a full rebuild must find nothing to change."""
    seed_reference(engine)
    add_imported_total(engine, "B", BASE_DAY, 1, revenue=123.0)  # lines on this day must be skipped
    for number, batch in enumerate(batches, start=2):
        add_batch(engine, number, batch)
        result = refresh_daily_metrics(engine)
        assert result.mode == ("up to date" if not batch and number > 2 else ("full" if number == 2 else "incremental"))
        assert result.batches == int(bool(batch))
        assert result.days_recomputed == len({(row["store_code"], row["day"]) for row in batch})
    incremental = metrics_table(engine)
    refresh_daily_metrics(engine, full=True)
    assert_tables_equal(incremental, metrics_table(engine))
    imported = {("B", BASE_DAY): {name: None for name in METRICS} | {"revenue": 123.0, "orders": 7}}
    assert_tables_equal(incremental, expected_table([row for batch in batches for row in batch], imported=imported))


def expected_table(lines: Sequence[Line], *, imported: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """The definitions of the refresh module, in plain Python, as an independent oracle."""
    table = dict(imported)
    for key in {(row["store_code"], row["day"]) for row in lines} - set(table):
        day = [row for row in lines if (row["store_code"], row["day"]) == key]
        values = [row["quantity"] * row["unit_price"] - row["discount"] for row in day]
        known = all(row["unit_cost"] is not None for row in day)
        cost = sum(row["quantity"] * row["unit_cost"] for row in day) if known else None
        table[key] = {
            "revenue": sum(values),
            "orders": len({row["order_id"] for row in day if row["quantity"] > 0}),
            "units": sum(row["quantity"] for row in day),
            "customers": len({row["customer_id"] for row in day} - {None}),
            "cost": cost,
            "margin": None if cost is None else sum(values) - cost,
            "returns": -sum(v for v, row in zip(values, day, strict=True) if row["quantity"] < 0),
            "return_units": -sum(row["quantity"] for row in day if row["quantity"] < 0),
        }
    return table


def assert_tables_equal(actual: dict[Any, dict[str, Any]], expected: dict[Any, dict[str, Any]]) -> None:
    assert set(actual) == set(expected)
    for key, row in expected.items():
        for name in METRICS:
            want = row[name]
            assert actual[key][name] == (want if want is None else pytest.approx(want, abs=1e-9)), (key, name)


@pytest.fixture
def fresh_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A factory of new SQLite warehouses (one per hypothesis example; function fixtures are not reset by it)."""
    engines: list[Engine] = []

    def make() -> Engine:
        path = tmp_path_factory.mktemp("prop") / "w.db"
        engine = create_warehouse_engine(f"sqlite:///{path}")
        ensure_schema(engine)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=BATCHES)
def test_property_incremental_equals_full_rebuild(fresh_sqlite: Any, batches: list[list[Line]]) -> None:
    assert_incremental_matches_full(fresh_sqlite(), batches)


FIXED_SCENARIOS = {
    "late lines for old days": [
        [line("A", BASE_DAY, "o1", "c1", 2, 10.0, cost=4.0), line("B", BASE_DAY, "o2", None, 1, 2.5)],
        [line("A", BASE_DAY + dt.timedelta(days=3), "o3", "c2", 1, 10.0, cost=4.0)],
        [line("A", BASE_DAY, "o4", "c3", -1, 10.0, cost=4.0, discount=0.25)],  # late return, old day
        [],
        [line("B", BASE_DAY, "o5", "c1", 5, 1.0), line("B", BASE_DAY + dt.timedelta(days=1), "o5", "c1", 1, 1.0)],
    ],
    "cost becomes unknown late": [
        [line("A", BASE_DAY, "o1", "c1", 1, 10.0, cost=4.0)],
        [line("A", BASE_DAY, "o2", "c1", 1, 10.0, cost=None)],
    ],
}


@pytest.mark.parametrize("name", sorted(FIXED_SCENARIOS))
def test_fixed_scenarios_incremental_equals_full(warehouse: Engine, name: str) -> None:
    assert_incremental_matches_full(warehouse, FIXED_SCENARIOS[name])
