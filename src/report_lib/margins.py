"""Margins per product or category: revenue, cost, margin, margin %, contribution, negative-margin flags.

Input is one row per product, as ``load_product_sales`` returns it: units, net revenue, cost (NaN when any line of
the product lacks a unit cost) and the count of lines without a cost. Rules:

- ``margin = revenue - cost``; ``margin_pct = 100 · margin / revenue`` (NaN when revenue is 0).
- A row whose cost is unknown keeps its revenue but gets NaN cost, margin, margin % and contribution, an unknown
  (``<NA>``) ``negative_margin`` and a ``note`` "cost unknown for N lines". A category is unknown as soon as one of
  its products is: a partial cost would understate it silently.
- ``contribution`` is the row's share of the total margin of the rows whose cost is known. It is NaN for every row
  when that total is not positive: shares of a loss do not add up to anything meaningful.
- Returns make net revenue and cost negative for a product now and then: such numbers are kept as they are.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from report_lib.errors import DataValidationError, InsufficientDataError, require_columns

log = logging.getLogger(__name__)

By = Literal["sku", "category"]
MARGIN_COLUMNS = (
    "units",
    "revenue",
    "cost",
    "margin",
    "margin_pct",
    "contribution",
    "negative_margin",
    "lines_without_cost",
    "note",
)


def compute_margins(
    product_sales: pd.DataFrame,
    *,
    by: By = "sku",
    sku_col: str = "sku",
    name_col: str = "name",
    category_col: str = "category",
    units_col: str = "units",
    revenue_col: str = "revenue",
    cost_col: str = "cost",
    missing_cost_col: str = "lines_without_cost",
) -> pd.DataFrame:
    """Margins per sku (sku, name, category first) or per category, sorted by margin, largest first.

    Unknown margins sort last. Columns after the keys: units, revenue, cost, margin, margin_pct, contribution,
    negative_margin (nullable boolean), lines_without_cost, note ('' when the cost is known).

    Raises:
        DataValidationError: missing columns, duplicated skus, NaN revenue or units, negative line counts.
        InsufficientDataError: no rows (no product sales in the store or period).
    """
    if by not in ("sku", "category"):
        raise DataValidationError(f"by is {by!r}; expected 'sku' or 'category'")
    keys = [sku_col, name_col, category_col] if by == "sku" else [category_col]
    numbers = [units_col, revenue_col, cost_col, missing_cost_col]
    sales = _validated(product_sales, keys=list(dict.fromkeys([sku_col, *keys])), numbers=numbers, sku_col=sku_col)
    sales = sales.rename(
        columns={units_col: "units", revenue_col: "revenue", cost_col: "cost", missing_cost_col: "lines_without_cost"}
    )
    if by == "category":
        sales = _by_category(sales, category_col=category_col)
    return _with_margins(sales[[*keys, "units", "revenue", "cost", "lines_without_cost"]])


def margin_summary_note(margins: pd.DataFrame, *, revenue_col: str = "revenue", note_col: str = "note") -> str | None:
    """One sentence on unknown costs for the report, or None when every cost is known.

    Takes the output of ``compute_margins`` (either grain).
    """
    require_columns(margins.columns, [revenue_col, "cost", "lines_without_cost", note_col], what="margins")
    unknown = margins["cost"].isna()
    if not unknown.any():
        return None
    lines = int(margins.loc[unknown, "lines_without_cost"].sum())
    if unknown.all():
        return (
            f"Margins cannot be computed: unit costs are unknown for {lines} order lines, covering every row. "
            "Load unit costs with the order lines (unit_cost column) to see margins."
        )
    revenue = margins[revenue_col]
    share = revenue[unknown].sum() / revenue.sum() * 100 if revenue.sum() else float("nan")
    return (
        f"Unit costs are unknown for {lines} order lines ({int(unknown.sum())} of {len(margins)} rows, "
        f"{share:.1f}% of revenue): their margins are left blank and contributions are shares of the known margin."
    )


def _validated(frame: pd.DataFrame, *, keys: list[str], numbers: list[str], sku_col: str) -> pd.DataFrame:
    require_columns(frame.columns, [*keys, *numbers], what="product sales")
    if frame.empty:
        raise InsufficientDataError(
            "No product sales to compute margins from: the store has no order lines in this period. "
            "Choose another period, or check that the store's order lines were imported."
        )
    if frame[sku_col].duplicated().any():
        repeated = sorted(frame.loc[frame[sku_col].duplicated(), sku_col].astype(str).unique())[:5]
        raise DataValidationError(
            f"product sales repeat skus {repeated}; expected one row per sku. Aggregate the rows per sku first."
        )
    sales = frame[[*keys, *numbers]].copy()
    for column in numbers:
        try:
            sales[column] = pd.to_numeric(sales[column]).astype("float64")
        except (ValueError, TypeError) as exc:
            raise DataValidationError(f"product sales column {column!r} must be numeric: {exc}") from exc
    required = [c for c in numbers if c != numbers[2]]  # cost may be NaN (unknown); the others may not
    bad = sales[required].isna().any(axis=1) | (sales[numbers[3]] < 0)
    if bad.any():
        raise DataValidationError(
            f"{int(bad.sum())} product rows have NaN in {required} or a negative line count "
            f"(skus {sorted(sales.loc[bad, sku_col].astype(str))[:5]}); expected numbers. Only cost may be NaN "
            "(unknown).",
            details={"bad_rows": int(bad.sum())},
        )
    unknown_cost = sales[numbers[2]].isna() & sales[numbers[3]].eq(0)
    if unknown_cost.any():
        log.warning(
            "margins: %d products have NaN cost but no line without cost; counted as 1 line", unknown_cost.sum()
        )
        sales.loc[unknown_cost, numbers[3]] = 1.0
    return sales


def _by_category(sales: pd.DataFrame, *, category_col: str) -> pd.DataFrame:
    grouped = sales.groupby(category_col, sort=True, dropna=False)
    totals = grouped[["units", "revenue", "lines_without_cost"]].sum()
    cost = grouped["cost"].sum(min_count=1)
    totals["cost"] = cost.where(totals["lines_without_cost"].eq(0))
    return totals.reset_index()


def _with_margins(table: pd.DataFrame) -> pd.DataFrame:
    margin = table["revenue"] - table["cost"]
    known_total = margin.sum(min_count=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        margin_pct = (100 * margin / table["revenue"]).where(table["revenue"].ne(0))
    contribution = margin / known_total if known_total > 0 else margin * np.nan
    lines = table["lines_without_cost"].astype("int64")
    result = table.assign(
        lines_without_cost=lines,
        margin=margin,
        margin_pct=margin_pct,
        contribution=contribution,
        negative_margin=margin.lt(0).astype("boolean").mask(margin.isna()),
        note=pd.array(np.where(table["cost"].isna(), _unknown_note(lines), ""), dtype="str"),
    )
    keys = [c for c in table.columns if c not in MARGIN_COLUMNS]
    result = result.sort_values("margin", ascending=False, na_position="last", kind="stable", ignore_index=True)
    return result[[*keys, *MARGIN_COLUMNS]]


def _unknown_note(lines: pd.Series) -> pd.Series:
    return "cost unknown for " + lines.astype(str) + np.where(lines.eq(1), " line", " lines")
