"""`import lines` on tiny hand-written CSVs, on SQLite and PostgreSQL: what loads, what is rejected and why."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, Table, func, select

from report_lib.errors import ImportRejectedError
from report_lib.warehouse import import_write, importers
from report_lib.warehouse.import_options import ImportOptions
from report_lib.warehouse.import_presets import get_preset
from report_lib.warehouse.importers import AllRowsRejectedError, import_lines
from report_lib.warehouse.schema import (
    customers,
    daily_metrics,
    import_batches,
    order_lines,
    orders,
    products,
    stores,
)

DATA = Path(__file__).parent / "data" / "import"
AS_OF = dt.date(2024, 6, 30)
TABLES = (stores, products, customers, import_batches, orders, order_lines, daily_metrics)


def options(tmp_path: Path, **changes: Any) -> ImportOptions:
    return ImportOptions(as_of=AS_OF, rejects_path=tmp_path / "rejects.csv", **changes)


def with_stores(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(stores.insert(), [{"code": "S1", "name": "One"}, {"code": "S2", "name": "Two"}])
    return engine


@pytest.fixture
def shop(warehouse: Engine) -> Engine:
    """A warehouse (SQLite and PostgreSQL) with stores S1 and S2: for the main paths."""
    return with_stores(warehouse)


@pytest.fixture
def sqlite_shop(sqlite_warehouse: Engine) -> Engine:
    """The same on SQLite only: for validation details that do not depend on the database."""
    return with_stores(sqlite_warehouse)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {table.name: sorted(map(tuple, conn.execute(select(table)).all()), key=repr) for table in TABLES}


def scalar(conn: Connection, query: Any) -> Any:
    return conn.execute(query).scalar_one()


def lines_frame(engine: Engine) -> pd.DataFrame:
    query = select(order_lines).order_by(order_lines.c.order_id, order_lines.c.sku)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all())


def test_good_file_loads_every_table(shop: Engine, tmp_path: Path) -> None:
    result = import_lines(shop, DATA / "lines_good.csv", options=options(tmp_path))
    assert (result.rows_read, result.rows_loaded, result.rejected) == (4, 4, {})
    assert result.rejects_file is None and not (tmp_path / "rejects.csv").exists()
    lines = lines_frame(shop)
    assert lines["quantity"].tolist() == [2, 1, -1, 3]  # O1/A, O1/B, O2/A (a return), O3/C
    assert (lines["quantity"] * lines["unit_price"] - lines["discount"]).sum() == pytest.approx(15.0)
    assert lines["unit_cost"].isna().tolist() == [False, True, False, False]
    assert [d.isoformat()[:10] for d in pd.to_datetime(lines["day"])] == [
        "2024-03-01",
        "2024-03-01",
        "2024-03-02",
        "2024-03-02",
    ]
    assert set(lines["batch_id"]) == {result.batch_id}
    with shop.connect() as conn:
        assert conn.execute(select(orders.c.order_id, orders.c.customer_id).order_by(orders.c.order_id)).all() == [
            ("O1", "C1"),
            ("O2", None),
            ("O3", "C2"),
        ]
        o1 = conn.execute(select(orders.c.ordered_at).where(orders.c.order_id == "O1")).scalar_one()
        assert pd.Timestamp(o1) == pd.Timestamp("2024-03-01 10:00:00")  # the order's earliest line
        assert conn.execute(select(products.c.sku, products.c.name, products.c.category).order_by("sku")).all() == [
            ("A", "Apple", "Fruit"),
            ("B", "Bread", "Bakery"),
            ("C", "C", "Uncategorised"),  # placeholders when the file has no name or category
        ]
        assert conn.execute(select(customers.c.customer_id, customers.c.home_store).order_by("customer_id")).all() == [
            ("C1", "S1"),
            ("C2", "S2"),
        ]
        batch = conn.execute(select(import_batches)).mappings().one()
    assert (batch["kind"], batch["rows_loaded"], batch["rows_rejected"]) == ("lines", 4, 0)
    assert batch["batch_id"] == result.batch_id and len(batch["content_sha256"]) == 64


BAD_ROWS = [
    # (line, reason, column, found)
    (4, "unparseable date", "timestamp", "31/02/2024"),
    (5, "non-numeric money", "unit_price", "abc"),
    (6, "non-numeric quantity", "quantity", "two"),
    (7, "negative price", "unit_price", "-1.50"),
    (8, "zero quantity", "quantity", "0"),
    (9, "future date", "timestamp", "2030-01-01 09:00:00"),
    (10, "unknown store", "store", "S9"),
    (11, "missing required value", "order_id", "(empty)"),
    (12, "duplicate line", "(all columns)", "same as line 3"),
]


def test_each_kind_of_bad_row_is_rejected_with_row_column_found_expected(shop: Engine, tmp_path: Path) -> None:
    result = import_lines(shop, DATA / "lines_bad.csv", options=options(tmp_path))
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (12, 3, 9)
    assert result.rejected == {reason: 1 for _, reason, _, _ in BAD_ROWS}
    rejects = pd.read_csv(result.rejects_file or "", dtype=str, keep_default_na=False)
    assert list(rejects.columns[-5:]) == ["_row", "_column", "_found", "_expected", "_reason"]
    assert list(rejects.columns[:7]) == ["store", "order_id", "timestamp", "customer", "sku", "quantity", "unit_price"]
    got = [
        (int(row), reason, column, found)
        for row, reason, column, found in rejects[["_row", "_reason", "_column", "_found"]].to_numpy()
    ]
    assert got == BAD_ROWS
    assert all(rejects["_expected"] != "")
    assert rejects.loc[rejects["_row"] == "9", "_expected"].item().startswith("a date on or before 2024-06-30")
    lines = lines_frame(shop)
    assert lines[["order_id", "sku", "quantity"]].to_numpy().tolist() == [
        ["O1", "A", 2],
        ["O1", "B", 1],
        ["O9", "C", 3],
    ]
    assert (lines["quantity"] * lines["unit_price"]).sum() == pytest.approx(17.0)
    assert lines["customer_id"].isna().tolist() == [False, False, True]
    with shop.connect() as conn:
        assert scalar(conn, select(import_batches.c.rows_rejected)) == 9
        assert scalar(conn, select(func.count()).select_from(stores)) == 2  # S9 not created


def test_create_stores_loads_the_unknown_store(sqlite_shop: Engine, tmp_path: Path) -> None:
    result = import_lines(
        sqlite_shop, DATA / "lines_bad.csv", options=options(tmp_path, create_stores=True, currency="EUR")
    )
    assert result.rows_loaded == 4 and "unknown store" not in result.rejected
    assert result.stores_created == ("S9",)
    with sqlite_shop.connect() as conn:
        assert conn.execute(select(stores.c.name, stores.c.currency).where(stores.c.code == "S9")).one() == (
            "S9",
            "EUR",
        )


def test_byte_identical_reimport_does_nothing(shop: Engine, tmp_path: Path) -> None:
    first = import_lines(shop, DATA / "lines_good.csv", options=options(tmp_path))
    before = snapshot(shop)
    again = import_lines(shop, DATA / "lines_good.csv", options=options(tmp_path))
    assert again.already_imported and again.previous is not None
    assert again.previous.batch_id == first.batch_id and again.batch_id is None and again.rows_loaded == 0
    assert snapshot(shop) == before


def test_overlapping_export_rejects_orders_already_loaded(shop: Engine, tmp_path: Path) -> None:
    import_lines(shop, DATA / "lines_good.csv", options=options(tmp_path))
    result = import_lines(shop, DATA / "lines_overlap.csv", options=options(tmp_path))
    assert (result.rows_loaded, result.rejected) == (2, {"already in warehouse": 1})
    rejects = pd.read_csv(result.rejects_file or "", dtype=str)
    assert rejects[["_row", "_column", "_found"]].to_numpy().tolist() == [["2", "order_id", "O1"]]
    lines = lines_frame(shop)
    assert lines.groupby("order_id")["quantity"].sum().to_dict() == {"O1": 3, "O10": 6, "O2": -1, "O3": 3}
    with shop.connect() as conn:
        assert scalar(conn, select(func.count()).select_from(import_batches)) == 2
        assert conn.execute(select(products.c.name).where(products.c.sku == "A")).scalar_one() == "Apple"  # kept


@pytest.mark.parametrize("failing_table", ["orders", "order_lines"])
def test_failure_mid_import_leaves_the_warehouse_as_before(
    shop: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_table: str
) -> None:
    import_lines(shop, DATA / "lines_good.csv", options=options(tmp_path))
    before = snapshot(shop)
    real_insert = import_write.insert_frame
    calls: list[str] = []

    def failing_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
        calls.append(table.name)
        if table.name == failing_table:
            raise RuntimeError("disk full")
        return real_insert(conn, table, frame)

    monkeypatch.setattr(import_write, "insert_frame", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        import_lines(shop, DATA / "lines_bad.csv", options=options(tmp_path, create_stores=True))
    assert {"stores", "products"} <= set(calls)  # real writes happened before the failure...
    assert snapshot(shop) == before  # ...and were rolled back with the batch row


def test_rows_written_meanwhile_by_another_import_fail_cleanly(
    shop: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_lines(shop, DATA / "lines_good.csv", options=options(tmp_path))
    before = snapshot(shop)
    monkeypatch.setattr(importers, "check_loaded_orders", lambda *args, **kwargs: None)  # as if O1 arrived after it
    with pytest.raises(ImportRejectedError, match=r"collided with rows written meanwhile.*run the import again"):
        import_lines(shop, DATA / "lines_overlap.csv", options=options(tmp_path))
    assert snapshot(shop) == before


def test_dry_run_reports_and_writes_nothing(sqlite_shop: Engine, tmp_path: Path) -> None:
    before = snapshot(sqlite_shop)
    result = import_lines(
        sqlite_shop, DATA / "lines_bad.csv", options=options(tmp_path, create_stores=True), dry_run=True
    )
    assert result.dry_run and result.batch_id is None
    assert (result.rows_loaded, result.rows_rejected, result.stores_created) == (4, 8, ("S9",))
    assert snapshot(sqlite_shop) == before
    assert result.rejects_file is not None and result.rejects_file.exists()


def test_every_row_rejected_is_refused_but_explained(sqlite_shop: Engine, tmp_path: Path) -> None:
    before = snapshot(sqlite_shop)
    pattern = r"every row .* was rejected \(2 unknown store, 1 non-numeric money\)"
    with pytest.raises(AllRowsRejectedError, match=pattern) as caught:
        import_lines(sqlite_shop, DATA / "lines_dollars.csv", options=options(tmp_path, default_store="S9"))
    assert caught.value.rejected == {"unknown store": 2, "non-numeric money": 1}
    assert "--create-stores" in str(caught.value)
    assert snapshot(sqlite_shop) == before
    rejects = pd.read_csv(tmp_path / "rejects.csv", dtype=str)
    assert rejects[["_row", "_column", "_found"]].to_numpy().tolist() == [
        ["2", "(--store)", "S9"],
        ["3", "(--store)", "S9"],
        ["4", "unit_price", "1,5"],
    ]


def test_semicolon_decimal_comma_euro_file(sqlite_shop: Engine, tmp_path: Path) -> None:
    mapping = {
        "store": "Filiale",
        "order_id": "Beleg",
        "timestamp": "Zeit",
        "sku": "Artikel",
        "quantity": "Menge",
        "unit_price": "Preis",
    }
    opts = options(tmp_path, mapping=mapping, decimal=",", date_format="%d.%m.%Y %H:%M")
    result = import_lines(sqlite_shop, DATA / "lines_euro.csv", options=opts)
    assert result.delimiter == ";"
    assert (result.rows_loaded, result.rejected) == (3, {"non-numeric money": 1})
    lines = lines_frame(sqlite_shop)
    assert lines["unit_price"].tolist() == [1234.5, 12.5, 3.0]
    assert pd.Timestamp(lines["ordered_at"].iloc[0]) == pd.Timestamp("2024-03-01 10:00")
    rejects = pd.read_csv(tmp_path / "rejects.csv", dtype=str)
    assert rejects[["_row", "_column", "_found"]].to_numpy().tolist() == [["5", "Preis", "3.00"]]
    assert "decimal comma" in rejects["_expected"].item()


def test_dollar_amounts_and_a_default_store(sqlite_shop: Engine, tmp_path: Path) -> None:
    result = import_lines(sqlite_shop, DATA / "lines_dollars.csv", options=options(tmp_path, default_store="S2"))
    assert (result.rows_loaded, result.rejected) == (2, {"non-numeric money": 1})
    lines = lines_frame(sqlite_shop)
    assert lines[["store_code", "unit_price", "discount"]].to_numpy().tolist() == [
        ["S2", 1234.5, 0.5],
        ["S2", 7.25, 0.0],
    ]
    rejects = pd.read_csv(tmp_path / "rejects.csv", dtype=str)
    assert rejects[["_row", "_column", "_found"]].to_numpy().tolist() == [["4", "unit_price", "1,5"]]


def test_online_retail_preset_on_a_tiny_sample(warehouse: Engine, tmp_path: Path) -> None:
    preset = get_preset("online-retail")
    opts = replace(preset.options, rejects_path=tmp_path / "r.csv", as_of=AS_OF)
    result = import_lines(warehouse, DATA / "lines_retail.csv", options=opts)
    assert (result.rows_loaded, result.rejected) == (4, {"zero unit price (free or adjustment line)": 1})
    assert result.stores_created == ("france", "united-kingdom")
    lines = lines_frame(warehouse)
    by_order = dict(zip(lines["order_id"], lines["quantity"], strict=True))
    assert by_order == {"536365": 6, "536370": 24, "C536379": -1, "C536383": -1}  # "C" invoices are returns
    assert lines.loc[lines["order_id"] == "536370", "customer_id"].isna().item()  # NA CustomerID -> NULL
    with warehouse.connect() as conn:
        assert conn.execute(select(stores.c.code, stores.c.name, stores.c.currency).order_by("code")).all() == [
            ("france", "France", "GBP"),
            ("united-kingdom", "United Kingdom", "GBP"),
        ]
        assert scalar(conn, select(func.count()).where(products.c.sku == "22139")) == 0  # only rejected lines had it


def test_unknown_mapping_writes_nothing(sqlite_shop: Engine, tmp_path: Path) -> None:
    before = snapshot(sqlite_shop)
    with pytest.raises(ImportRejectedError, match=r"sku='Article': no such column in lines_good.csv"):
        import_lines(sqlite_shop, DATA / "lines_good.csv", options=options(tmp_path, mapping={"sku": "Article"}))
    assert snapshot(sqlite_shop) == before
