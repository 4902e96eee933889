"""Order-line imports: raw strings -> typed, checked lines -> products, customers, orders and order_lines rows.

Returns (negative quantities) are allowed; with a ``return_prefix`` (online-retail: "C") lines of such orders get
negative quantities whatever sign the file gave them. ``day`` is the date of the (store-local) timestamp.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, Table

from report_lib.warehouse import import_checks as checks
from report_lib.warehouse import import_rejects as reasons
from report_lib.warehouse.import_options import ImportOptions
from report_lib.warehouse.import_parse import clean_text, parse_count, parse_dates, parse_money
from report_lib.warehouse.import_rejects import RowRejects
from report_lib.warehouse.import_write import existing_keys
from report_lib.warehouse.schema import customers, order_lines, orders, products

TEXT_FIELDS = ("order_id", "customer", "sku", "product_name", "category")
MONEY_FIELDS = ("unit_price", "unit_cost", "discount")
REQUIRED_TEXT = {
    "order_id": "the order or invoice number",
    "sku": "the product code",
}
PLACEHOLDER_CATEGORY = "Uncategorised"


def validate_lines(
    raw: pd.DataFrame, columns: dict[str, str], options: ImportOptions
) -> tuple[pd.DataFrame, RowRejects]:
    """Typed lines (one per raw row, same index) and the rows rejected by checks that need no database."""
    rejects = RowRejects(raw.index)
    lines = checks.resolve_stores(raw, columns, options)
    for field in TEXT_FIELDS:
        lines[field] = clean_text(checks.column_or_empty(raw, columns, field))
    unparseable: dict[str, pd.Series] = {}
    lines["ordered_at"], unparseable["timestamp"] = parse_dates(
        raw[columns["timestamp"]], date_format=options.date_format
    )
    lines["quantity"], unparseable["quantity"] = parse_count(raw[columns["quantity"]], decimal=options.decimal)
    for field in MONEY_FIELDS:
        money = checks.column_or_empty(raw, columns, field)
        lines[field], unparseable[field] = parse_money(money, decimal=options.decimal)
    _check_required(rejects, lines, columns, unparseable=unparseable)
    _check_parsed(rejects, raw, columns, options, unparseable=unparseable)
    _check_signs(rejects, raw, lines, columns, options)
    for field in ("store_code", "order_id", "sku", "customer"):
        column = checks.store_column_name(columns) if field == "store_code" else columns.get(field, field)
        checks.check_too_long(rejects, lines[field], column=column)
    checks.check_store_code(rejects, lines["store_code"], column=checks.store_column_name(columns))
    checks.check_duplicates(rejects, raw)
    return _as_returns(lines, options.return_prefix), rejects


def _check_required(
    rejects: RowRejects, lines: pd.DataFrame, columns: dict[str, str], *, unparseable: dict[str, pd.Series]
) -> None:
    """Empty required values, in the file's column order of importance; parsed fields are empty when NA and not bad."""
    store_column = checks.store_column_name(columns)
    checks.check_missing(rejects, lines["store_code"].isna(), column=store_column, what="the store")
    checks.check_missing(rejects, lines["order_id"].isna(), column=columns["order_id"], what=REQUIRED_TEXT["order_id"])
    for field, value_field, what in (
        ("timestamp", "ordered_at", "the order's date and time"),
        ("quantity", "quantity", "a whole number"),
    ):
        empty = lines[value_field].isna() & ~unparseable[field]
        checks.check_missing(rejects, empty, column=columns[field], what=what)
    checks.check_missing(rejects, lines["sku"].isna(), column=columns["sku"], what=REQUIRED_TEXT["sku"])
    empty_price = lines["unit_price"].isna() & ~unparseable["unit_price"]
    checks.check_missing(rejects, empty_price, column=columns["unit_price"], what="a price")


def _check_parsed(
    rejects: RowRejects,
    raw: pd.DataFrame,
    columns: dict[str, str],
    options: ImportOptions,
    *,
    unparseable: dict[str, pd.Series],
) -> None:
    """Values that could not be parsed: dates, quantities, money."""
    time_column = columns["timestamp"]
    date_shape = options.date_format or "ISO 8601 (YYYY-MM-DD HH:MM:SS)"
    rejects.add(
        unparseable["timestamp"],
        reason=reasons.BAD_DATE,
        column=time_column,
        found=raw[time_column],
        expected=f"a date as {date_shape}",
    )
    quantity_column = columns["quantity"]
    rejects.add(
        unparseable["quantity"],
        reason=reasons.BAD_QUANTITY,
        column=quantity_column,
        found=raw[quantity_column],
        expected="a whole number such as 3 or -1 (returns)",
    )
    for field in MONEY_FIELDS:
        if field in columns:
            rejects.add(
                unparseable[field],
                reason=reasons.BAD_MONEY,
                column=columns[field],
                found=raw[columns[field]],
                expected=_money_shape(options.decimal),
            )


def _check_signs(
    rejects: RowRejects, raw: pd.DataFrame, lines: pd.DataFrame, columns: dict[str, str], options: ImportOptions
) -> None:
    """Parsed values that are out of range: zero quantity, negative money, zero price (optional), future dates."""
    quantity_column, time_column = columns["quantity"], columns["timestamp"]
    rejects.add(
        lines["quantity"] == 0,
        reason=reasons.ZERO_QUANTITY,
        column=quantity_column,
        found=raw[quantity_column],
        expected="a non-zero whole number (negative for returns)",
    )
    for field in MONEY_FIELDS:
        if field in columns:
            rejects.add(
                lines[field] < 0,
                reason=reasons.NEGATIVE_PRICE,
                column=columns[field],
                found=raw[columns[field]],
                expected="zero or more (record returns as a negative quantity, not a negative price)",
            )
    if options.reject_zero_price:
        rejects.add(
            lines["unit_price"] == 0,
            reason=reasons.ZERO_PRICE,
            column=columns["unit_price"],
            found=raw[columns["unit_price"]],
            expected="a price above zero (free items and stock adjustments are not sales)",
        )
    checks.check_future(
        rejects, lines["ordered_at"].dt.normalize(), raw[time_column], column=time_column, as_of=options.today()
    )


def _money_shape(decimal: str) -> str:
    if decimal == ",":
        return "an amount such as 1.234,50 or € 12,50 (decimal comma)"
    return "an amount such as 1234.50, 1,234.50 or $12.50 (use --decimal , for 12,50)"


def _as_returns(lines: pd.DataFrame, return_prefix: str | None) -> pd.DataFrame:
    if not return_prefix:
        return lines
    is_return = lines["order_id"].str.startswith(return_prefix).fillna(False).astype(bool)
    quantity = lines["quantity"].where(~is_return, -lines["quantity"].abs())
    return lines.assign(quantity=quantity)


def check_loaded_orders(conn: Connection, lines: pd.DataFrame, rejects: RowRejects, *, order_column: str) -> None:
    """Reject lines of orders (store, order id) that an earlier batch already loaded."""
    ok = rejects.ok
    keys = lines.loc[ok, ["store_code", "order_id"]]
    found = existing_keys(conn, orders, keys)
    if found.empty:
        return
    loaded = pd.MultiIndex.from_frame(found[["store_code", "order_id"]])
    hit = pd.MultiIndex.from_frame(lines[["store_code", "order_id"]].astype("object")).isin(loaded)
    rejects.add(
        pd.Series(hit, index=lines.index),
        reason=reasons.ALREADY_LOADED,
        column=order_column,
        found=lines["order_id"],
        expected="an order not imported before (this order is in the warehouse from an earlier import)",
    )


def line_frames(conn: Connection, lines: pd.DataFrame, *, batch_id: int) -> list[tuple[Table, pd.DataFrame]]:
    """The rows to insert for accepted ``lines``: new products, new customers, orders, order_lines."""
    return [
        (products, _new_products(conn, lines)),
        (customers, _new_customers(conn, lines)),
        (orders, _orders(lines, batch_id)),
        (order_lines, _order_lines(lines, batch_id)),
    ]


def _new_products(conn: Connection, lines: pd.DataFrame) -> pd.DataFrame:
    """Products for SKUs not in the warehouse: name and category from the file (or placeholders), median prices."""
    known = existing_keys(conn, products, lines[["sku"]])
    grouped = lines.loc[~lines["sku"].isin(known["sku"])].groupby("sku", sort=True)
    names = grouped["product_name"].first()
    frame = pd.DataFrame(
        {
            "name": names.fillna(pd.Series(names.index, index=names.index)).str.slice(0, 300),
            "category": grouped["category"].first().fillna(PLACEHOLDER_CATEGORY).str.slice(0, 100),
            "unit_cost": grouped["unit_cost"].median(),
            "unit_price": grouped["unit_price"].median(),
        }
    )
    return frame.rename_axis("sku").reset_index()


def _new_customers(conn: Connection, lines: pd.DataFrame) -> pd.DataFrame:
    identified = lines.loc[lines["customer"].notna()]
    known = existing_keys(conn, customers, identified[["customer"]].rename(columns={"customer": "customer_id"}))
    identified = identified.loc[~identified["customer"].isin(known["customer_id"])]
    first = identified.sort_values("ordered_at", kind="stable").drop_duplicates("customer")
    return pd.DataFrame(
        {
            "customer_id": first["customer"].to_numpy(),
            "home_store": first["store_code"].to_numpy(),
            "first_seen": first["ordered_at"].dt.normalize().to_numpy(),
        }
    )


def _orders(lines: pd.DataFrame, batch_id: int) -> pd.DataFrame:
    grouped = lines.groupby(["store_code", "order_id"], sort=True)
    frame = pd.DataFrame({"ordered_at": grouped["ordered_at"].min(), "customer_id": grouped["customer"].first()})
    return frame.reset_index().assign(batch_id=batch_id)


def _order_lines(lines: pd.DataFrame, batch_id: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "store_code": lines["store_code"],
            "order_id": lines["order_id"],
            "ordered_at": lines["ordered_at"],
            "day": lines["ordered_at"].dt.normalize(),
            "customer_id": lines["customer"],
            "sku": lines["sku"],
            "quantity": lines["quantity"].astype("int64"),
            "unit_price": lines["unit_price"],
            "unit_cost": lines["unit_cost"],
            "discount": lines["discount"].fillna(0.0),
            "batch_id": batch_id,
        }
    ).reset_index(drop=True)
