"""SQL injection and path escape attempts through the importers, the loaders and the runner, on SQLite and
PostgreSQL; and a guard that no SQL in the library is built by string formatting from anything but constants.
"""

from __future__ import annotations

import ast
import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, inspect, select

from report_lib.errors import ConfigError, ReportNotFoundError
from report_lib.params import ParameterFiles
from report_lib.run.plan import RunRequest, plan_jobs
from report_lib.warehouse.import_options import ImportOptions
from report_lib.warehouse.importers import import_daily, import_lines
from report_lib.warehouse.loaders.baskets import load_basket_items, load_products
from report_lib.warehouse.loaders.customers import load_customer_rfm
from report_lib.warehouse.loaders.daily import load_daily_metrics, load_stores
from report_lib.warehouse.loaders.kpis import load_period_totals
from report_lib.warehouse.loaders.products import load_product_sales
from report_lib.warehouse.refresh import refresh_daily_metrics
from report_lib.warehouse.schema import metadata, order_lines, products, stores

SRC = Path(__file__).resolve().parent.parent / "src" / "report_lib"
STORE = "S1'; DROP TABLE stores; --"
ORDER = "O1' OR '1'='1"
SKU = 'A"); DELETE FROM products; --'
CUSTOMER = "C1'/*"
PRODUCT = "Robert'); DROP TABLE order_lines;--"
PROBES = ["' OR '1'='1", "S1' OR 1=1 --", "x'); DROP TABLE stores; --", "%", "_", "*"]
START, END = dt.date(2024, 3, 1), dt.date(2024, 3, 2)


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def hostile(warehouse: Engine, tmp_path: Path) -> Engine:
    """A warehouse loaded, through the importer, from a file whose every text value is an injection attempt."""
    lines = pd.DataFrame(
        {
            "store": [STORE, STORE, "S2"],
            "order_id": [ORDER, ORDER, "O2"],
            "timestamp": ["2024-03-01 10:00:00", "2024-03-01 10:00:00", "2024-03-02 09:00:00"],
            "customer": [CUSTOMER, CUSTOMER, ""],
            "sku": [SKU, "B", SKU],
            "product_name": [PRODUCT, "Bread", PRODUCT],
            "category": ["'; --", "Bakery", "'; --"],
            "quantity": ["2", "1", "3"],
            "unit_price": ["1.50", "2.00", "1.50"],
        }
    )
    result = import_lines(
        warehouse,
        _csv(lines, tmp_path / "lines.csv"),
        options=ImportOptions(create_stores=True, as_of=END, rejects_path=tmp_path / "rejects.csv"),
    )
    assert (result.rows_loaded, result.rejected) == (3, {})
    refresh_daily_metrics(warehouse)
    return warehouse


def test_injection_attempts_are_stored_as_plain_values(hostile: Engine) -> None:
    assert set(inspect(hostile).get_table_names()) >= set(metadata.tables)  # nothing dropped
    with hostile.connect() as conn:
        assert set(conn.execute(select(stores.c.code)).scalars()) == {STORE, "S2"}
        assert conn.execute(select(func.count()).select_from(order_lines)).scalar_one() == 3
        assert conn.execute(select(products.c.name).where(products.c.sku == SKU)).scalar_one() == PRODUCT
        assert set(conn.execute(select(order_lines.c.order_id)).scalars()) == {ORDER, "O2"}


def test_loaders_bind_their_filters(hostile: Engine) -> None:
    """Each loader finds the hostile store by its exact code, and nothing at all for injection-shaped codes."""
    assert list(load_stores(hostile, [STORE]).code) == [STORE]
    assert load_daily_metrics(hostile, stores=[STORE]).revenue.sum() == pytest.approx(5.0)
    assert load_period_totals(hostile, store=STORE, start=START, end=END)["revenue"] == pytest.approx(5.0)
    assert set(load_product_sales(hostile, stores=STORE, start=START, end=END).sku) == {SKU, "B"}
    assert set(load_basket_items(hostile, stores=STORE, start=START, end=END).order_id) == {ORDER}
    assert list(load_customer_rfm(hostile, stores=STORE, as_of=END).customer_id) == [CUSTOMER]
    assert list(load_products(hostile, [SKU]).name) == [PRODUCT]
    for probe in PROBES:
        assert load_stores(hostile, [probe]).empty
        assert load_daily_metrics(hostile, stores=[probe]).empty
        with pytest.raises(ReportNotFoundError, match="known: S1'; DROP TABLE stores; --, S2"):
            load_product_sales(hostile, stores=probe, start=START, end=END)
        assert load_products(hostile, [probe]).empty
    assert set(inspect(hostile).get_table_names()) >= set(metadata.tables)


@pytest.mark.parametrize("code", ["../../x", "..", "a/b", "a\\b", "S1\r\nBcc: x@example.com", "."])
def test_store_codes_that_could_escape_reports_are_rejected_by_the_importer(
    warehouse: Engine, tmp_path: Path, code: str
) -> None:
    daily = pd.DataFrame({"store": [code, "S9"], "date": ["2024-03-01", "2024-03-01"], "revenue": ["10", "20"]})
    result = import_daily(
        warehouse,
        _csv(daily, tmp_path / "daily.csv"),
        options=ImportOptions(create_stores=True, as_of=END, rejects_path=tmp_path / "rejects.csv"),
    )
    assert (result.rows_loaded, result.rejected) == (1, {"unusable store code": 1})
    with warehouse.connect() as conn:
        assert list(conn.execute(select(stores.c.code)).scalars()) == ["S9"]


def test_a_store_code_with_a_path_in_the_warehouse_is_refused_before_any_kernel(
    sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    """Written by hand (not by the importer): the runner still refuses it, naming it, and writes nothing."""
    with sqlite_warehouse.begin() as conn:
        conn.execute(stores.insert(), [{"code": "../../x", "name": "Escape"}, {"code": "S1", "name": "Main"}])
    request = RunRequest(stores="all", notebooks="kpis", period="2024-W10")
    with pytest.raises(ConfigError, match=r"store.*path separators.*\.\./\.\./x"):
        plan_jobs(request, stores=load_stores(sqlite_warehouse), files=ParameterFiles(), output_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


# SQL text built with f-strings or % / .format in the library, and the only names each may interpolate: table
# names from the schema's metadata and integer constants. Anything else is a candidate for injection.
ALLOWED_INTERPOLATIONS = {
    ("warehouse/refresh.py", "refresh_state.name"),
    ("warehouse/refresh.py", "_touched.name"),
    ("warehouse/demo.py", "names"),
    ("warehouse/engine.py", "SQLITE_BUSY_TIMEOUT_MS"),
}
SQL_CALLS = {"text", "exec_driver_sql", "execute", "executescript"}


def _formatted_sql() -> set[tuple[str, str]]:
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in SQL_CALLS:
                continue
            first = node.args[0]
            where = path.relative_to(SRC).as_posix()
            if isinstance(first, ast.JoinedStr):
                for value in first.values:  # noqa: PD011  # an AST node, not pandas
                    if isinstance(value, ast.FormattedValue):
                        found.add((where, ast.unparse(value.value)))
            elif isinstance(first, ast.BinOp) or (
                isinstance(first, ast.Call) and getattr(first.func, "attr", "") == "format"
            ):
                found.add((where, ast.unparse(first)))
    return found


def test_sql_text_interpolates_only_schema_names_and_constants() -> None:
    unexpected = _formatted_sql() - ALLOWED_INTERPOLATIONS
    assert not unexpected, f"SQL built from formatted strings (bind parameters instead): {sorted(unexpected)}"


def test_the_guard_sees_formatted_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan above would notice a new f-string query (so its passing means something)."""
    package = tmp_path / "report_lib"
    package.mkdir()
    (package / "bad.py").write_text(
        "def f(conn, code):\n    conn.execute(text(f\"SELECT * FROM stores WHERE code = '{code}'\"))\n"
    )
    monkeypatch.setattr(__import__(__name__), "SRC", package)
    assert _formatted_sql() == {("bad.py", "code")}
