"""Product recommendations from co-purchases: item-to-item support, confidence and lift, popularity fallback.

Input: baskets, one row per (order, product) as ``report_lib.warehouse.loaders.baskets.load_basket_items`` returns
them (repeated rows count once). With N orders, n_a orders containing a, n_b containing b and n_ab containing both:

    support(a, b) = n_ab / N        confidence(a -> b) = n_ab / n_a        lift(a, b) = n_ab * N / (n_a * n_b)

Lift above 1 means the two are bought together more often than chance would have it. Pairs are counted on a sparse
order x product 0/1 matrix X as the upper triangle of X.T @ X, after dropping the products that are in too few orders
to reach ``min_support`` with any partner (a pair is never in more orders than either of its items).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from report_lib.errors import ConfigError, DataValidationError, require_columns

log = logging.getLogger(__name__)

PAIR_COLUMNS = (
    "item_a",
    "item_b",
    "orders_together",
    "orders_a",
    "orders_b",
    "support",
    "confidence_a_to_b",
    "confidence_b_to_a",
    "lift",
)
ALSO_BOUGHT_COLUMNS = ("bought", "rank", "also_bought", "source", "orders_together", "confidence", "lift")
CO_PURCHASE = "co-purchase"
FALLBACK = "popular (fallback)"


def co_purchase(
    baskets: pd.DataFrame,
    *,
    min_support: float = 0.001,
    order_col: str = "order_id",
    item_col: str = "sku",
) -> pd.DataFrame:
    """Every unordered pair of items bought together in at least ``min_support`` of the orders.

    One row per pair with item_a < item_b: orders_together, orders_a, orders_b, support, confidence both ways and
    lift (see the module docstring); sorted by item_a, item_b. The threshold in orders is
    ``ceil(min_support * N)``, at least 1.
    """
    if not 0 <= min_support <= 1:
        raise ConfigError(f"min_support is {min_support}; expected a share of orders between 0 and 1, e.g. 0.001.")
    _validate_baskets(baskets, order_col, item_col)
    matrix, items = _basket_matrix(baskets, order_col, item_col)
    n_orders = matrix.shape[0]
    if n_orders == 0:
        return _empty_pairs()
    min_orders = max(1, math.ceil(min_support * n_orders - 1e-9))
    item_orders = np.asarray(matrix.sum(axis=0)).ravel()
    keep = np.flatnonzero(item_orders >= min_orders)
    matrix = matrix[:, keep].tocsr()
    together = sp.triu(matrix.T @ matrix, k=1).tocoo()
    wanted = together.data >= min_orders
    rows, cols, counts = together.row[wanted], together.col[wanted], together.data[wanted].astype("int64")
    order = np.lexsort((cols, rows))
    first, second, counts = keep[rows[order]], keep[cols[order]], counts[order]
    log.debug("co_purchase: %d orders, %d items, %d pairs >= %d orders", n_orders, len(items), len(counts), min_orders)
    return _pair_frame(items, first, second, counts, item_orders, n_orders)


def _basket_matrix(baskets: pd.DataFrame, order_col: str, item_col: str) -> tuple[sp.csc_array, np.ndarray]:
    """The order x item 0/1 matrix (CSC, int32) and the item labels of its columns, sorted."""
    order_codes, n_orders = _order_codes(baskets[order_col])
    item_codes, items = pd.factorize(baskets[item_col].to_numpy(dtype=object))
    if (order_codes < 0).any() or (item_codes < 0).any():  # factorize's code for a missing value
        _refuse_missing(baskets, (order_col, item_col))
    by_label = np.argsort(items, kind="stable")
    rank = np.empty(len(items), dtype="int64")
    rank[by_label] = np.arange(len(items))
    ones = np.ones(len(order_codes), dtype="int32")
    shape = (n_orders, len(items))
    matrix = sp.coo_array((ones, (order_codes, rank[item_codes])), shape=shape).tocsc()
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix, np.asarray(items[by_label])


def _order_codes(orders: pd.Series) -> tuple[np.ndarray, int]:
    """Row numbers for the orders. Sorted input (the loader's) is cut into runs, which is ~3x faster than hashing."""
    values = orders.to_numpy(dtype=object)  # plain objects hash faster than pandas' python-backed str array
    if len(values) and orders.is_monotonic_increasing:
        starts = np.r_[True, values[1:] != values[:-1]]
        return np.cumsum(starts) - 1, int(starts.sum())
    codes, uniques = pd.factorize(values)
    return codes, len(uniques)


def _pair_frame(
    items: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    counts: np.ndarray,
    item_orders: np.ndarray,
    n_orders: int,
) -> pd.DataFrame:
    orders_a = item_orders[first].astype("int64")
    orders_b = item_orders[second].astype("int64")
    return pd.DataFrame(
        {
            "item_a": pd.array(items[first], dtype="str"),
            "item_b": pd.array(items[second], dtype="str"),
            "orders_together": counts,
            "orders_a": orders_a,
            "orders_b": orders_b,
            "support": counts / n_orders,
            "confidence_a_to_b": counts / orders_a,
            "confidence_b_to_a": counts / orders_b,
            "lift": counts * float(n_orders) / (orders_a * orders_b.astype("float64")),
        }
    )


def _empty_pairs() -> pd.DataFrame:
    empty = np.array([], dtype="int64")
    return _pair_frame(np.array([], dtype=object), empty, empty, empty, empty, 1)


def _validate_baskets(baskets: pd.DataFrame, order_col: str, item_col: str) -> None:
    require_columns(baskets.columns, (order_col, item_col), what="baskets")


def _refuse_missing(baskets: pd.DataFrame, columns: Iterable[str]) -> None:
    for column in columns:
        missing = int(baskets[column].isna().sum())
        if missing:
            raise DataValidationError(
                f"baskets column {column!r} has {missing} missing values; expected an order id and a product on "
                "every row. Drop those rows first.",
                details={"column": column},
            )


def popular_items(
    baskets: pd.DataFrame, n: int | None = 10, *, order_col: str = "order_id", item_col: str = "sku"
) -> pd.DataFrame:
    """The ``n`` items in most orders (all with None): item, orders, support; ties by item."""
    _validate_baskets(baskets, order_col, item_col)
    matrix, items = _basket_matrix(baskets, order_col, item_col)
    counts = pd.DataFrame(
        {"item": pd.array(items, dtype="str"), "orders": np.asarray(matrix.sum(axis=0)).ravel().astype("int64")}
    )
    counts = counts.sort_values(["orders", "item"], ascending=[False, True], ignore_index=True)
    counts["support"] = counts["orders"] / max(matrix.shape[0], 1)
    return counts if n is None else counts.head(n)


def top_pairs(pairs: pd.DataFrame, n: int = 10, *, by: str = "lift") -> pd.DataFrame:
    """The ``n`` pairs with the highest ``by`` (then most orders together, then item names)."""
    require_columns(pairs.columns, PAIR_COLUMNS, what="pairs (from co_purchase)")
    if by not in {"lift", "support", "orders_together", "confidence_a_to_b", "confidence_b_to_a"}:
        raise ConfigError(f"top_pairs(by={by!r}): expected lift, support, orders_together or a confidence column.")
    ranked = pairs.sort_values(
        [by, "orders_together", "item_a", "item_b"], ascending=[False, False, True, True], ignore_index=True
    )
    return ranked.head(n)


def also_bought(pairs: pd.DataFrame, sku: str, n: int = 5, *, popularity: pd.DataFrame | None = None) -> pd.DataFrame:
    """ "Bought ``sku``, also bought": its partners ranked by lift, then confidence, then name.

    Columns: bought, rank, also_bought, source, orders_together, confidence (sku -> partner), lift. When ``sku`` has
    no pair (no history, or none above the minimum support), the most popular other items of ``popularity``
    (from popular_items) are returned instead, with source "popular (fallback)" and no confidence or lift; without
    ``popularity`` the result is then empty.
    """
    return also_bought_table(pairs, [sku], n, popularity=popularity)


def also_bought_table(
    pairs: pd.DataFrame, items: Iterable[str], n: int = 3, *, popularity: pd.DataFrame | None = None
) -> pd.DataFrame:
    """also_bought for each of ``items`` (e.g. a store's best sellers), stacked in the order given."""
    require_columns(pairs.columns, PAIR_COLUMNS, what="pairs (from co_purchase)")
    wanted = list(dict.fromkeys(items))
    directed = _directed(pairs, wanted)
    position = pd.Series(range(len(wanted)), index=pd.Index(wanted, dtype="str"))
    directed["position"] = directed["bought"].map(position).to_numpy()
    ranked = directed.sort_values(
        ["position", "lift", "confidence", "also_bought"], ascending=[True, False, False, True], kind="stable"
    )
    ranked = ranked.groupby("position", sort=False).head(n)
    partners = ranked.assign(rank=ranked.groupby("position", sort=False).cumcount() + 1, source=CO_PURCHASE)
    if popularity is not None:
        alone = [sku for sku in wanted if sku not in set(partners["bought"])]
        fallback = _fallback(popularity, alone, n).assign(position=lambda f: f["bought"].map(position).to_numpy())
        partners = pd.concat([partners, fallback]).sort_values(["position", "rank"], kind="stable")
    return _also_bought_frame(partners)


def _directed(pairs: pd.DataFrame, items: list[str]) -> pd.DataFrame:
    """Both directions of the pairs whose first item is one of ``items``: bought, also_bought, confidence..."""
    names = ["bought", "also_bought", "orders_together", "confidence", "lift"]
    forward = pairs.loc[
        pairs["item_a"].isin(items), ["item_a", "item_b", "orders_together", "confidence_a_to_b", "lift"]
    ]
    backward = pairs.loc[
        pairs["item_b"].isin(items), ["item_b", "item_a", "orders_together", "confidence_b_to_a", "lift"]
    ]
    return pd.concat([forward.set_axis(names, axis=1), backward.set_axis(names, axis=1)], ignore_index=True)


def _fallback(popularity: pd.DataFrame, items: list[str], n: int) -> pd.DataFrame:
    require_columns(popularity.columns, ("item", "orders"), what="popularity (from popular_items)")
    ranked = popularity["item"].astype("str").tolist()
    rows = [(sku, rank, other) for sku in items for rank, other in enumerate([o for o in ranked if o != sku][:n], 1)]
    frame = pd.DataFrame(rows, columns=["bought", "rank", "also_bought"])
    missing = pd.array([pd.NA] * len(frame), dtype="Int64")
    return frame.assign(source=FALLBACK, orders_together=missing, confidence=np.nan, lift=np.nan)


def _also_bought_frame(partners: pd.DataFrame) -> pd.DataFrame:
    result = partners.loc[:, list(ALSO_BOUGHT_COLUMNS)].reset_index(drop=True)
    dtypes = {"bought": "str", "rank": "int64", "also_bought": "str", "source": "str", "orders_together": "Int64"}
    return result.astype({**dtypes, "confidence": "float64", "lift": "float64"})


def name_items(
    frame: pd.DataFrame,
    products: pd.DataFrame,
    *,
    item_cols: Iterable[str] = ("item_a", "item_b"),
    sku_col: str = "sku",
    name_col: str = "name",
) -> pd.DataFrame:
    """``frame`` with a ``<column>_name`` column after each item column (the sku itself when the product is unknown)."""
    require_columns(products.columns, (sku_col, name_col), what="products")
    names = products.drop_duplicates(sku_col).set_index(sku_col)[name_col]
    result = frame.copy()
    for column in item_cols:
        require_columns(frame.columns, (column,), what="table to label")
        labels = result[column].map(names).fillna(result[column]).astype("str")
        result.insert(list(result.columns).index(column) + 1, f"{column}_name", labels)
    return result
