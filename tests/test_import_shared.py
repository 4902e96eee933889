"""The two real exports in ../shared/data through their presets (skipped when the folder is absent)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from report_lib.warehouse.import_presets import get_preset
from report_lib.warehouse.importers import import_daily, import_lines
from report_lib.warehouse.schema import customers, daily_metrics, order_lines, stores

pytestmark = pytest.mark.shared_data

WALMART = "walmart_store_sales/Walmart_Store_sales.csv"
ONLINE_RETAIL = "online_retail_uci_sample/online_retail_random20k.csv"
ZERO_PRICE = "zero unit price (free or adjustment line)"


def test_walmart_gives_45_stores_by_143_weeks(warehouse: Engine, shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / WALMART
    options = replace(get_preset("walmart").options, rejects_path=tmp_path / "rejects.csv")
    result = import_daily(warehouse, path, options=options)
    assert (result.rows_read, result.rows_loaded, result.rejected) == (6435, 6435, {})
    with warehouse.connect() as conn:
        per_store = conn.execute(
            select(daily_metrics.c.store_code, func.count(), func.count(func.distinct(daily_metrics.c.day)))
            .group_by(daily_metrics.c.store_code)
            .order_by(daily_metrics.c.store_code)
        ).all()
        grains = set(conn.execute(select(daily_metrics.c.grain)).scalars())
        total = conn.execute(select(func.sum(daily_metrics.c.revenue))).scalar_one()
        first, last = conn.execute(select(func.min(daily_metrics.c.day), func.max(daily_metrics.c.day))).one()
        store_count = conn.execute(select(func.count()).select_from(stores)).scalar_one()
    assert store_count == 45
    assert [code for code, _, _ in per_store] == [f"W{n:02d}" for n in range(1, 46)]
    assert {(rows, days) for _, rows, days in per_store} == {(143, 143)}
    assert grains == {"week"}
    assert (str(first)[:10], str(last)[:10]) == ("2010-02-05", "2012-10-26")
    assert total == pytest.approx(pd.read_csv(path)["Weekly_Sales"].sum(), rel=1e-12)


def test_online_retail_sample_loads_with_rejects_explained(
    warehouse: Engine, shared_data: Path, tmp_path: Path
) -> None:
    path = shared_data / ONLINE_RETAIL
    options = replace(get_preset("online-retail").options, rejects_path=tmp_path / "rejects.csv")
    result = import_lines(warehouse, path, options=options)

    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    zero = pd.to_numeric(raw["UnitPrice"]) == 0
    duplicate = raw.duplicated() & ~zero
    assert (zero.sum(), duplicate.sum()) == (90, 7)  # the README's 90 zero-price lines; 7 exact repeats
    assert result.rows_loaded + result.rows_rejected == 20000
    assert result.rejected == {ZERO_PRICE: 90, "duplicate line": 7}
    rejects = pd.read_csv(result.rejects_file or "", dtype=str, keep_default_na=False)
    assert len(rejects) == 97 and (rejects["_row"].astype(int) >= 2).all()

    accepted = raw.loc[~zero & ~duplicate]
    returns = accepted["InvoiceNo"].str.startswith("C")
    quantity = pd.to_numeric(accepted["Quantity"]).where(~returns, -pd.to_numeric(accepted["Quantity"]).abs())
    expected_value = (quantity * pd.to_numeric(accepted["UnitPrice"])).sum()
    with warehouse.connect() as conn:
        value = conn.execute(select(func.sum(order_lines.c.quantity * order_lines.c.unit_price))).scalar_one()
        return_lines = conn.execute(
            select(func.count(), func.max(order_lines.c.quantity)).where(order_lines.c.order_id.like("C%"))
        ).one()
        no_customer = conn.execute(select(func.count()).where(order_lines.c.customer_id.is_(None))).scalar_one()
        sample_customer = conn.execute(select(customers.c.customer_id).limit(1)).scalar_one()
        first_day = conn.execute(select(func.min(order_lines.c.day))).scalar_one()
    assert value == pytest.approx(expected_value, rel=1e-9)
    assert return_lines[0] == 350 and return_lines[1] < 0  # all 350 "C" lines loaded, all negative
    assert no_customer == (accepted["CustomerID"] == "NA").sum()
    assert sample_customer.isdigit()  # "12621", not "12621.0"
    assert str(first_day)[:10] == "2010-12-01"
    assert result.stores_created[:3] == ("australia", "austria", "belgium") and len(result.stores_created) == 35
