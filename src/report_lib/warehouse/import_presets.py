"""Presets for the real exports the project is checked against (see ../shared/data/README.md).

A preset is a kind plus ImportOptions; options given explicitly (CLI flags, ``--map``) override the preset's.

- ``walmart``: Kaggle "Walmart Store Sales": one row per store and week-ending Friday (DD-MM-YYYY) with
  Weekly_Sales; stored as weekly revenue rows (grain 'week'), stores W01..W45 named "Walmart store N".
- ``online-retail``: UCI "Online Retail": order lines of a UK gift retailer; Country stands in for the store
  (code "united-kingdom", name "United Kingdom", currency GBP); invoices starting with "C" are returns; a missing
  CustomerID ("NA") is allowed; zero-price lines (free samples, stock adjustments such as "damaged") are rejected
  as "zero unit price (free or adjustment line)" because they are not sales.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from report_lib.errors import ReportNotFoundError
from report_lib.warehouse.import_options import ImportOptions, Kind


@dataclass(frozen=True)
class Preset:
    kind: Kind
    options: ImportOptions
    description: str


PRESETS: dict[str, Preset] = {
    "walmart": Preset(
        kind="daily",
        options=ImportOptions(
            mapping={"store": "Store", "date": "Date", "revenue": "Weekly_Sales"},
            delimiter=",",
            date_format="%d-%m-%Y",
            grain="week",
            week_date="end",
            create_stores=True,
            store_prefix="W",
            store_pad=2,
            store_name_template="Walmart store {raw}",
        ),
        description="Walmart weekly store sales (Store, Date DD-MM-YYYY week ending, Weekly_Sales)",
    ),
    "online-retail": Preset(
        kind="lines",
        options=ImportOptions(
            mapping={
                "order_id": "InvoiceNo",
                "sku": "StockCode",
                "product_name": "Description",
                "quantity": "Quantity",
                "timestamp": "InvoiceDate",
                "unit_price": "UnitPrice",
                "customer": "CustomerID",
                "store": "Country",
            },
            delimiter=",",
            create_stores=True,
            currency="GBP",
            return_prefix="C",
            reject_zero_price=True,
            slug_stores=True,
        ),
        description="UCI Online Retail order lines (InvoiceNo, StockCode, ..., Country as the store)",
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ReportNotFoundError listing the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError as exc:
        raise ReportNotFoundError("import preset", name, PRESETS) from exc


def apply_overrides(base: ImportOptions, overrides: dict[str, Any]) -> ImportOptions:
    """``base`` with the given fields replaced; a mapping is merged field by field (overrides win)."""
    known = {f.name for f in fields(ImportOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown ImportOptions fields {unknown}")
    changes = dict(overrides)
    if "mapping" in changes:
        changes["mapping"] = {**base.mapping, **changes["mapping"]}
    return replace(base, **changes)
