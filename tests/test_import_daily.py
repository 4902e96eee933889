"""`import daily` on tiny hand-written CSVs: daily and weekly store totals, rejects, overlaps, rollback."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, Table, select

from report_lib.warehouse import import_write
from report_lib.warehouse.import_options import ImportOptions
from report_lib.warehouse.import_presets import get_preset
from report_lib.warehouse.importers import import_daily
from report_lib.warehouse.schema import daily_metrics, import_batches, stores

DATA = Path(__file__).parent / "data" / "import"
AS_OF = dt.date(2024, 6, 30)
WEEKLY = {"mapping": {"date": "week", "revenue": "sales"}, "default_store": "S1", "grain": "week"}


def options(tmp_path: Path, **changes: Any) -> ImportOptions:
    return ImportOptions(as_of=AS_OF, rejects_path=tmp_path / "rejects.csv", **changes)


def with_stores(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(stores.insert(), [{"code": "S1", "name": "One"}, {"code": "S2", "name": "Two"}])
    return engine


@pytest.fixture
def shop(warehouse: Engine) -> Engine:
    return with_stores(warehouse)


@pytest.fixture
def sqlite_shop(sqlite_warehouse: Engine) -> Engine:
    return with_stores(sqlite_warehouse)


def metrics(engine: Engine) -> list[tuple[Any, ...]]:
    columns = ("store_code", "day", "grain", "revenue", "orders", "units", "customers", "cost", "margin", "returns")
    query = select(*[daily_metrics.c[name] for name in columns], daily_metrics.c.source).order_by(
        daily_metrics.c.store_code, daily_metrics.c.day
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(row[0], str(row[1])[:10], *row[2:]) for row in rows]


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr) for t in (stores, daily_metrics)
        } | {"batches": list(map(tuple, conn.execute(select(import_batches)).all()))}


def test_daily_totals_load_with_margin_where_cost_is_known(shop: Engine, tmp_path: Path) -> None:
    result = import_daily(shop, DATA / "daily_good.csv", options=options(tmp_path))
    assert (result.rows_loaded, result.rejected) == (3, {})
    assert metrics(shop) == [
        ("S1", "2024-03-01", "day", 100.5, 10, 25, 9, 60.0, 40.5, 5.0, "import"),
        ("S1", "2024-03-02", "day", 200.0, 20, 40, 18, None, None, 0.0, "import"),
        ("S2", "2024-03-01", "day", 50.0, 5, None, None, None, None, None, "import"),
    ]
    with shop.connect() as conn:
        assert set(conn.execute(select(daily_metrics.c.batch_id)).scalars()) == {result.batch_id}


def test_weekly_totals_stay_weekly_dated_on_the_last_day(shop: Engine, tmp_path: Path) -> None:
    opts = options(tmp_path, week_date="start", **WEEKLY)
    result = import_daily(shop, DATA / "daily_weekly_start.csv", options=opts)
    assert result.rows_loaded == 2
    assert metrics(shop) == [  # one row per week (never spread over days), revenue only
        ("S1", "2024-03-03", "week", 1000.0, None, None, None, None, None, None, "import"),
        ("S1", "2024-03-10", "week", 1500.5, None, None, None, None, None, None, "import"),
    ]


def test_orders_alone_and_columns_found_by_name(sqlite_shop: Engine, tmp_path: Path) -> None:
    result = import_daily(sqlite_shop, DATA / "daily_orders_only.csv", options=options(tmp_path))
    assert result.columns == {"store": "Store Code", "date": "Day", "orders": "Orders"}
    assert [(row[1], row[3], row[4]) for row in metrics(sqlite_shop)] == [
        ("2024-03-01", None, 12),
        ("2024-03-02", None, 15),
    ]


BAD_ROWS = [
    # (line, reason, column, found)
    (3, "unparseable date", "date", "2024-13-01"),
    (4, "non-numeric money", "revenue", "abc"),
    (5, "non-numeric count", "orders", "1.5"),
    (6, "negative amount", "revenue", "-5"),
    (7, "future date", "date", "2030-03-05"),
    (8, "unknown store", "store", "S9"),
    (9, "missing required value", "revenue / orders", "(empty)"),
    (10, "duplicate line", "(all columns)", "same as line 2"),
    (11, "conflicting row for the same store and day", "date", "same store and day as line 2"),
]


def test_each_kind_of_bad_total_is_rejected(sqlite_shop: Engine, tmp_path: Path) -> None:
    result = import_daily(sqlite_shop, DATA / "daily_bad.csv", options=options(tmp_path))
    assert (result.rows_read, result.rows_loaded) == (11, 2)
    assert result.rejected == {reason: 1 for _, reason, _, _ in BAD_ROWS}
    rejects = pd.read_csv(tmp_path / "rejects.csv", dtype=str, keep_default_na=False)
    got = [(int(r), reason, c, f) for r, reason, c, f in rejects[["_row", "_reason", "_column", "_found"]].to_numpy()]
    assert got == BAD_ROWS
    loaded = metrics(sqlite_shop)
    assert [(row[1], row[3], row[4]) for row in loaded] == [("2024-03-01", 100.0, 10), ("2024-03-08", 80.0, 8)]


def test_weekly_rows_overlapping_loaded_days_are_rejected(shop: Engine, tmp_path: Path) -> None:
    import_daily(shop, DATA / "daily_good.csv", options=options(tmp_path))
    opts = options(tmp_path, week_date="start", **WEEKLY)
    result = import_daily(shop, DATA / "daily_weekly_start.csv", options=opts)
    assert (result.rows_loaded, result.rejected) == (1, {"already in warehouse": 1})  # week to 03-03 has S1 days
    rejects = pd.read_csv(tmp_path / "rejects.csv", dtype=str)
    assert rejects[["_row", "_column", "_found"]].to_numpy().tolist() == [["2", "week", "2024-02-26"]]
    assert [(row[0], row[1], row[2]) for row in metrics(shop)] == [
        ("S1", "2024-03-01", "day"),
        ("S1", "2024-03-02", "day"),
        ("S1", "2024-03-10", "week"),
        ("S2", "2024-03-01", "day"),
    ]


def test_days_inside_a_loaded_week_are_rejected(sqlite_shop: Engine, tmp_path: Path) -> None:
    import_daily(sqlite_shop, DATA / "daily_weekly_start.csv", options=options(tmp_path, week_date="start", **WEEKLY))
    result = import_daily(sqlite_shop, DATA / "daily_good.csv", options=options(tmp_path))
    assert (result.rows_loaded, result.rejected) == (1, {"already in warehouse": 2})  # only S2 loads


def test_byte_identical_reimport_does_nothing(shop: Engine, tmp_path: Path) -> None:
    first = import_daily(shop, DATA / "daily_good.csv", options=options(tmp_path))
    before = snapshot(shop)
    again = import_daily(shop, DATA / "daily_good.csv", options=options(tmp_path))
    assert again.previous is not None and again.previous.batch_id == first.batch_id and again.rows_loaded == 0
    assert snapshot(shop) == before


def test_failure_after_creating_stores_rolls_everything_back(
    shop: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(shop)
    real_insert = import_write.insert_frame
    calls: list[str] = []

    def fail_on_second_call(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
        calls.append(table.name)
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return real_insert(conn, table, frame)

    monkeypatch.setattr(import_write, "insert_frame", fail_on_second_call)
    preset = get_preset("walmart")
    with pytest.raises(RuntimeError, match="connection lost"):
        import_daily(shop, DATA / "daily_walmart.csv", options=replace(preset.options, rejects_path=tmp_path / "r.csv"))
    assert calls == ["stores", "daily_metrics"]
    assert snapshot(shop) == before


def test_walmart_preset_on_a_tiny_sample(warehouse: Engine, tmp_path: Path) -> None:
    preset = get_preset("walmart")
    assert preset.kind == "daily"
    result = import_daily(warehouse, DATA / "daily_walmart.csv", options=replace(preset.options, as_of=AS_OF))
    assert (result.rows_loaded, result.stores_created) == (4, ("W01", "W02"))
    assert [(row[0], row[1], row[2], row[3]) for row in metrics(warehouse)] == [
        ("W01", "2010-02-05", "week", 1643690.9),
        ("W01", "2010-02-12", "week", 1641957.44),
        ("W02", "2010-02-05", "week", 2136989.46),
        ("W02", "2010-02-12", "week", 2137809.5),
    ]
    with warehouse.connect() as conn:
        assert conn.execute(select(stores.c.code, stores.c.name).order_by("code")).all() == [
            ("W01", "Walmart store 1"),
            ("W02", "Walmart store 2"),
        ]
