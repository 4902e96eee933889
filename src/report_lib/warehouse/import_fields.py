"""The canonical fields of each import kind, and resolving them to the file's columns (``--map`` or by name)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from report_lib.errors import ImportRejectedError
from report_lib.warehouse.import_options import Kind

LINE_FIELDS = (
    "store",
    "order_id",
    "timestamp",
    "customer",
    "sku",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "unit_cost",
    "discount",
)
LINE_REQUIRED = ("store", "order_id", "timestamp", "sku", "quantity", "unit_price")
DAILY_FIELDS = ("store", "date", "revenue", "orders", "units", "customers", "cost", "returns")
DAILY_REQUIRED = ("store", "date")
DAILY_ONE_OF = ("revenue", "orders")

FIELDS: dict[Kind, tuple[str, ...]] = {"lines": LINE_FIELDS, "daily": DAILY_FIELDS}
REQUIRED: dict[Kind, tuple[str, ...]] = {"lines": LINE_REQUIRED, "daily": DAILY_REQUIRED}

# Other common column names accepted for a field without --map (after normalising).
ALIASES = {
    "storecode": "store",
    "customerid": "customer",
    "orderedat": "timestamp",
    "day": "date",
    "price": "unit_price",
}


def normalise(name: str) -> str:
    """Case-, space-, underscore- and dash-insensitive form of a column or field name."""
    return re.sub(r"[\s_\-]+", "", name).lower()


def resolve_columns(
    kind: Kind,
    columns: list[str],
    mapping: Mapping[str, str],
    *,
    path: Path,
    has_default_store: bool = False,
) -> dict[str, str]:
    """Field -> file column for every field found; raises ImportRejectedError before anything is read further."""
    fields = FIELDS[kind]
    _check_mapping(kind, fields, columns, mapping, path)
    resolved = {field: _match_column(mapping[field], columns) or mapping[field] for field in mapping}
    by_name = {normalise(column): column for column in columns}
    for field in fields:
        if field in resolved:
            continue
        column = by_name.get(normalise(field)) or next(
            (by_name[alias] for alias, target in ALIASES.items() if target == field and alias in by_name), None
        )
        if column is not None:
            resolved[field] = column
    _check_required(kind, resolved, columns, path, has_default_store=has_default_store)
    return resolved


def _match_column(wanted: str, columns: list[str]) -> str | None:
    if wanted in columns:
        return wanted
    matches = [column for column in columns if normalise(column) == normalise(wanted)]
    return matches[0] if len(matches) == 1 else None


def _check_mapping(
    kind: Kind, fields: tuple[str, ...], columns: list[str], mapping: Mapping[str, str], path: Path
) -> None:
    unknown = [field for field in mapping if field not in fields]
    if unknown:
        raise ImportRejectedError(
            f"--map names unknown field(s) {unknown} for `import {kind}`; allowed fields: {', '.join(fields)}. "
            f"Write --map FIELD=COLUMN with FIELD from that list",
            path=str(path),
        )
    missing = {field: column for field, column in mapping.items() if _match_column(column, columns) is None}
    if missing:
        pairs = ", ".join(f"{field}={column!r}" for field, column in missing.items())
        raise ImportRejectedError(
            f"--map {pairs}: no such column in {path.name}; its columns are {columns}. "
            "Use one of those names (check spelling and the --delimiter)",
            path=str(path),
        )


def _check_required(
    kind: Kind, resolved: Mapping[str, str], columns: list[str], path: Path, *, has_default_store: bool
) -> None:
    required = [field for field in REQUIRED[kind] if not (field == "store" and has_default_store)]
    missing = [field for field in required if field not in resolved]
    if missing:
        hint = " or give --store CODE for a single-store file" if "store" in missing else ""
        raise ImportRejectedError(
            f"{path.name} has no column for required field(s) {missing} of `import {kind}`; its columns are "
            f"{columns}. Map them with --map FIELD=COLUMN (e.g. --map {missing[0]}={columns[0]}){hint}",
            path=str(path),
        )
    if kind == "daily" and not any(field in resolved for field in DAILY_ONE_OF):
        raise ImportRejectedError(
            f"{path.name} has no column for revenue or orders; `import daily` needs at least one of them. Its "
            f"columns are {columns}; map one with --map revenue=COLUMN or --map orders=COLUMN",
            path=str(path),
        )
