"""Co-purchase recommendations: support, confidence and lift by hand, fallbacks, the basket loader on both databases."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from report_lib.errors import ConfigError, DataValidationError, InsufficientDataError, NeedsOrderLinesError
from report_lib.recommend import (
    ALSO_BOUGHT_COLUMNS,
    CO_PURCHASE,
    FALLBACK,
    PAIR_COLUMNS,
    also_bought,
    also_bought_table,
    co_purchase,
    name_items,
    popular_items,
    top_pairs,
)
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.loaders.baskets import load_basket_items, load_products
from report_lib.warehouse.schema import daily_metrics, import_batches, order_lines, products, stores

# The five baskets. Orders per item: bread 4, milk 4, diapers 4, beer 3, cola 2, eggs 1 (N = 5).
FIVE_BASKETS = {
    "T1": ["bread", "milk"],
    "T2": ["bread", "diapers", "beer", "eggs"],
    "T3": ["milk", "diapers", "beer", "cola"],
    "T4": ["bread", "milk", "diapers", "beer"],
    "T5": ["bread", "milk", "diapers", "cola"],
}

# Pairs in at least 2 of the 5 orders (min_support 0.4), computed by hand:
#   item_a   item_b   n_ab n_a n_b support conf a->b   conf b->a   lift = n_ab * 5 / (n_a * n_b)
#   beer     bread    2    3   4   0.4     2/3         2/4         10/12 = 0.8333
#   beer     diapers  3    3   4   0.6     3/3         3/4         15/12 = 1.25
#   beer     milk     2    3   4   0.4     2/3         2/4         10/12
#   bread    diapers  3    4   4   0.6     3/4         3/4         15/16 = 0.9375
#   bread    milk     3    4   4   0.6     3/4         3/4         15/16
#   cola     diapers  2    2   4   0.4     2/2         2/4         10/8 = 1.25
#   cola     milk     2    2   4   0.4     2/2         2/4         10/8
#   diapers  milk     3    4   4   0.6     3/4         3/4         15/16
# eggs is in one order only, so no pair with it can reach 2 orders: it is dropped before the matrix is built.
EXPECTED_AT_40 = pd.DataFrame(
    [
        ("beer", "bread", 2, 3, 4, 0.4, 2 / 3, 2 / 4, 10 / 12),
        ("beer", "diapers", 3, 3, 4, 0.6, 1.0, 3 / 4, 15 / 12),
        ("beer", "milk", 2, 3, 4, 0.4, 2 / 3, 2 / 4, 10 / 12),
        ("bread", "diapers", 3, 4, 4, 0.6, 3 / 4, 3 / 4, 15 / 16),
        ("bread", "milk", 3, 4, 4, 0.6, 3 / 4, 3 / 4, 15 / 16),
        ("cola", "diapers", 2, 2, 4, 0.4, 1.0, 2 / 4, 10 / 8),
        ("cola", "milk", 2, 2, 4, 0.4, 1.0, 2 / 4, 10 / 8),
        ("diapers", "milk", 3, 4, 4, 0.6, 3 / 4, 3 / 4, 15 / 16),
    ],
    columns=list(PAIR_COLUMNS),
).astype({"item_a": "str", "item_b": "str"})


def baskets_frame(baskets: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(order, item) for order, items in baskets.items() for item in items]
    return pd.DataFrame(rows, columns=["order_id", "sku"]).astype("str")


@pytest.fixture
def five() -> pd.DataFrame:
    return baskets_frame(FIVE_BASKETS)


def test_five_baskets_by_hand(five: pd.DataFrame) -> None:
    pairs = co_purchase(five, min_support=0.4)
    pd.testing.assert_frame_equal(pairs, EXPECTED_AT_40)


def test_every_pair_without_a_minimum(five: pd.DataFrame) -> None:
    pairs = co_purchase(five, min_support=0).set_index(["item_a", "item_b"])
    # 15 pairs of 6 items, minus cola-eggs and eggs-milk, which never meet
    assert len(pairs) == 13
    assert ("cola", "eggs") not in pairs.index and ("eggs", "milk") not in pairs.index
    # beer-eggs: together in T2 only; lift = 1 * 5 / (3 * 1); confidence eggs -> beer = 1/1
    assert pairs.loc[("beer", "eggs"), ["orders_together", "support", "lift"]].tolist() == pytest.approx(
        [1, 0.2, 5 / 3]
    )
    assert pairs.loc[("beer", "eggs"), "confidence_b_to_a"] == 1.0
    # bread-cola: T5 only; lift = 1 * 5 / (4 * 2) = 0.625
    assert pairs.loc[("bread", "cola"), "lift"] == pytest.approx(0.625)


def test_row_order_repeats_and_order_id_type_do_not_matter(five: pd.DataFrame) -> None:
    noisy = pd.concat([five, five.iloc[[0, 3]]]).sample(frac=1, random_state=4)  # T1 bread, T2 bread twice
    pd.testing.assert_frame_equal(co_purchase(noisy, min_support=0.4), EXPECTED_AT_40)
    numbered = five.assign(order_id=five["order_id"].str[1:].astype("int64"))
    pd.testing.assert_frame_equal(co_purchase(numbered, min_support=0.4), EXPECTED_AT_40)
    renamed = five.rename(columns={"order_id": "basket", "sku": "product"})
    result = co_purchase(renamed, min_support=0.4, order_col="basket", item_col="product")
    pd.testing.assert_frame_equal(result, EXPECTED_AT_40)


@pytest.mark.parametrize(
    ("baskets", "pairs", "popular"),
    [
        ({}, 0, []),  # empty
        ({"T1": ["tea"], "T2": ["tea"], "T3": ["tea"]}, 0, [("tea", 3, 1.0)]),  # one product
        ({"T1": ["tea", "jam"]}, 1, [("jam", 1, 1.0), ("tea", 1, 1.0)]),  # one order
    ],
)
def test_edge_cases(baskets: dict[str, list[str]], pairs: int, popular: list[tuple[str, int, float]]) -> None:
    result = co_purchase(baskets_frame(baskets), min_support=0.01)
    assert list(result.columns) == list(PAIR_COLUMNS)
    assert len(result) == pairs
    if pairs:
        assert result.loc[0, ["item_a", "item_b", "lift", "confidence_a_to_b"]].tolist() == ["jam", "tea", 1.0, 1.0]
    got = popular_items(baskets_frame(baskets), 5)
    assert list(got.itertuples(index=False, name=None)) == popular


def test_popular_items_counts_orders_not_lines(five: pd.DataFrame) -> None:
    popular = popular_items(pd.concat([five, five.iloc[[0]]]), 4)  # bread twice in T1
    assert popular["item"].tolist() == ["bread", "diapers", "milk", "beer"]
    assert popular["orders"].tolist() == [4, 4, 4, 3]
    assert popular["support"].tolist() == pytest.approx([0.8, 0.8, 0.8, 0.6])
    assert len(popular_items(five, None)) == 6


def test_top_pairs_by_lift_then_orders_then_names(five: pd.DataFrame) -> None:
    top = top_pairs(co_purchase(five, min_support=0), 6)
    # beer-eggs 1.667; then the four at 1.25: beer-diapers (3 orders), cola-diapers, cola-milk (2),
    # bread-eggs (1) ... diapers-eggs (1) is 6th
    assert list(zip(top["item_a"], top["item_b"], strict=True)) == [
        ("beer", "eggs"),
        ("beer", "diapers"),
        ("cola", "diapers"),
        ("cola", "milk"),
        ("bread", "eggs"),
        ("diapers", "eggs"),
    ]
    by_orders = top_pairs(co_purchase(five, min_support=0), 1, by="orders_together")
    assert by_orders[["item_a", "item_b"]].to_numpy().tolist() == [["beer", "diapers"]]


def test_also_bought_uses_both_directions(five: pd.DataFrame) -> None:
    pairs = co_purchase(five, min_support=0.4)
    beer = also_bought(pairs, "beer", 5)
    assert list(beer.columns) == list(ALSO_BOUGHT_COLUMNS)
    # beer is item_a in all its pairs: diapers (lift 1.25, beer -> diapers 3/3), then bread and milk (0.833, 2/3)
    assert beer["also_bought"].tolist() == ["diapers", "bread", "milk"]
    assert beer["confidence"].tolist() == pytest.approx([1.0, 2 / 3, 2 / 3])
    assert beer["rank"].tolist() == [1, 2, 3] and set(beer["source"]) == {CO_PURCHASE}
    # milk is item_b of most pairs: confidence must be milk -> partner, i.e. n_ab / n_milk
    milk = also_bought(pairs, "milk", 2)
    assert milk["also_bought"].tolist() == ["cola", "bread"]  # lift 1.25, then 0.9375 with confidence 3/4 ties
    assert milk["confidence"].tolist() == pytest.approx([2 / 4, 3 / 4])
    assert milk["orders_together"].tolist() == [2, 3]


def test_also_bought_falls_back_to_popular_items(five: pd.DataFrame) -> None:
    pairs = co_purchase(five, min_support=0.4)
    popular = popular_items(five, 10)
    eggs = also_bought(pairs, "eggs", 3, popularity=popular)  # eggs has no pair in >= 2 orders
    assert eggs["also_bought"].tolist() == ["bread", "diapers", "milk"]
    assert set(eggs["source"]) == {FALLBACK}
    assert eggs["lift"].isna().all() and eggs["orders_together"].isna().all()
    unknown = also_bought(pairs, "caviar", 2, popularity=popular)  # no history at all
    assert unknown["also_bought"].tolist() == ["bread", "diapers"]
    assert also_bought(pairs, "eggs", 3).empty  # no popularity given: nothing to fall back on
    table = also_bought_table(pairs, ["cola", "eggs"], 1, popularity=popular)
    assert table[["bought", "also_bought", "source"]].to_numpy().tolist() == [
        ["cola", "diapers", CO_PURCHASE],
        ["eggs", "bread", FALLBACK],
    ]
    assert list(also_bought_table(pairs, [], 1).columns) == list(ALSO_BOUGHT_COLUMNS)


def test_name_items_labels_and_keeps_unknown_skus(five: pd.DataFrame) -> None:
    catalogue = pd.DataFrame({"sku": ["beer", "diapers"], "name": ["Lager 6-pack", "Nappies"]})
    named = name_items(top_pairs(co_purchase(five, min_support=0.4), 1), catalogue)
    assert named.columns.tolist()[:4] == ["item_a", "item_a_name", "item_b", "item_b_name"]
    assert named.loc[0, ["item_a_name", "item_b_name"]].tolist() == ["Lager 6-pack", "Nappies"]
    fallback = name_items(pd.DataFrame({"item_a": ["zzz"], "item_b": ["beer"]}), catalogue)
    assert fallback.loc[0, "item_a_name"] == "zzz"


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda b: co_purchase(b.drop(columns="sku")), DataValidationError, "missing columns.*sku"),
        (lambda b: co_purchase(b.assign(sku=b["sku"].where(b.index != 2))), DataValidationError, "1 missing values"),
        (lambda b: popular_items(b.assign(order_id=None)), DataValidationError, "missing values"),
        (lambda b: co_purchase(b, min_support=2), ConfigError, "between 0 and 1"),
        (lambda b: top_pairs(co_purchase(b), by="price"), ConfigError, "expected lift"),
        (lambda b: also_bought(b, "beer"), DataValidationError, "pairs .from co_purchase. is missing"),
    ],
)
def test_bad_input_is_refused(five: pd.DataFrame, call: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(five)  # type: ignore[operator]


def test_sparse_counts_match_a_brute_force_count() -> None:
    rng = np.random.default_rng(3)
    baskets = {f"o{i}": sorted(set(rng.choice(list("abcdefgh"), rng.integers(1, 6)))) for i in range(60)}
    pairs = co_purchase(baskets_frame(baskets), min_support=0.05).set_index(["item_a", "item_b"])
    counts: dict[tuple[str, str], int] = {}
    for items in baskets.values():
        for i, first in enumerate(items):
            for second in items[i + 1 :]:
                counts[(first, second)] = counts.get((first, second), 0) + 1
    wanted = {pair: n for pair, n in counts.items() if n >= 3}  # ceil(0.05 * 60) = 3
    assert pairs["orders_together"].to_dict() == wanted


# ---------------------------------------------------------------- loader, on SQLite and PostgreSQL


def fill_warehouse(engine: Engine) -> None:
    # store, order, day, sku, quantity
    lines = [
        ("S1", "1", "2024-03-01", "beer", 2),
        ("S1", "1", "2024-03-01", "beer", 1),  # same product twice in an order: one basket row
        ("S1", "1", "2024-03-01", "diapers", 1),
        ("S1", "2", "2024-03-02", "diapers", 1),
        ("S1", "2", "2024-03-02", "milk", -1),  # a return is not part of the basket
        ("S1", "3", "2024-03-09", "milk", 1),
        ("S1", "4", "2024-02-10", "beer", 1),  # before the period
        ("S1", "5", "2024-03-20", "cola", -2),  # a period with returns only
        ("S2", "1", "2024-03-03", "milk", 1),  # order "1" of another store
        ("S2", "1", "2024-03-03", "cola", 1),
    ]
    frame = pd.DataFrame(lines, columns=["store_code", "order_id", "day", "sku", "quantity"])
    frame = frame.assign(day=pd.to_datetime(frame["day"]), unit_price=2.0, customer_id=None, batch_id=1).assign(
        ordered_at=lambda f: f["day"] + pd.Timedelta(hours=9)
    )
    with engine.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": ["S1", "S2", "W1"], "name": ["One", "Two", "Walmart 1"]}))
        catalogue = {"sku": ["beer", "cola", "diapers", "milk"], "name": ["Beer", "Cola", "Diapers", "Milk"]}
        insert_frame(conn, products, pd.DataFrame({**catalogue, "category": ["Drinks", "Drinks", "Baby", "Dairy"]}))
        batch = {"batch_id": [1], "kind": ["lines"], "source": ["test"], "loaded_at": [dt.datetime(2024, 4, 1)]}
        insert_frame(conn, import_batches, pd.DataFrame(batch))
        insert_frame(conn, order_lines, frame)
        weekly = {"day": pd.date_range("2012-01-06", periods=2, freq="7D"), "revenue": [1e6, 1.1e6]}
        insert_frame(
            conn, daily_metrics, pd.DataFrame({"store_code": "W1", **weekly, "grain": "week", "source": "import"})
        )


def test_load_basket_items(warehouse: Engine) -> None:
    fill_warehouse(warehouse)
    march = {"start": dt.date(2024, 3, 1), "end": dt.date(2024, 3, 31)}
    one = load_basket_items(warehouse, stores="S1", **march)
    assert one.to_numpy().tolist() == [["1", "beer"], ["1", "diapers"], ["2", "diapers"], ["3", "milk"]]
    both = load_basket_items(warehouse, stores=["S1", "S2"], **march)
    assert both["order_id"].tolist() == ["S1:1", "S1:1", "S1:2", "S1:3", "S2:1", "S2:1"]
    pairs = co_purchase(both, min_support=0)
    # 4 orders with a purchase (S1:5 is returns only): beer 1, diapers 2, milk 2, cola 1;
    # beer-diapers together in S1:1 -> lift 1 * 4 / (1 * 2) = 2; cola-milk in S2:1 -> 2
    assert pairs[["item_a", "item_b", "orders_together", "lift"]].to_numpy().tolist() == [
        ["beer", "diapers", 1, 2.0],
        ["cola", "milk", 1, 2.0],
    ]
    catalogue = load_products(warehouse)
    assert catalogue.loc[catalogue["sku"] == "diapers", ["name", "category"]].to_numpy().tolist() == [
        ["Diapers", "Baby"]
    ]
    assert load_products(warehouse, ["milk"])["name"].tolist() == ["Milk"]


@pytest.mark.parametrize(
    ("stores_", "start", "end", "error", "match"),
    [
        ("W1", "2012-01-01", "2012-12-31", NeedsOrderLinesError, "W1: 2 week rows in daily_metrics"),
        ("S1", "2025-01-01", "2025-01-31", InsufficientDataError, "run from 2024-02-10 to 2024-03-20"),
        ("S1", "2024-03-15", "2024-03-25", InsufficientDataError, "all returns"),
    ],
)
def test_load_basket_items_says_why_it_is_empty(
    warehouse: Engine, stores_: str, start: str, end: str, error: type[Exception], match: str
) -> None:
    fill_warehouse(warehouse)
    with pytest.raises(error, match=match) as caught:
        load_basket_items(warehouse, stores=stores_, start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end))
    if error is NeedsOrderLinesError:
        assert "Product recommendations need order lines" in str(caught.value)


def test_planted_demo_affinities_are_the_top_pairs_by_lift(sqlite_warehouse: Engine) -> None:
    demo = pytest.importorskip("report_lib.warehouse.demo", reason="the demo generator is written separately")
    end = dt.date(2024, 6, 30)
    demo.generate_demo(sqlite_warehouse, stores=1, days=90, seed=3, end=end, scale=1.0)
    baskets = load_basket_items(sqlite_warehouse, stores="S01", start=end - dt.timedelta(days=89), end=end)
    planted = {frozenset(pair) for pair in demo.affinity_pairs()}
    pairs = co_purchase(baskets, min_support=0.002)
    assert len(pairs) > len(planted)  # unplanted pairs compete
    top = top_pairs(pairs, len(planted))
    assert {frozenset(pair) for pair in zip(top["item_a"], top["item_b"], strict=True)} == planted
    # and "bought X, also bought" puts the planted partner first: Spaghetti's are its sauce and Parmesan
    spaghetti = next(group for group in demo.affinity_groups() if len(group) == 3)
    partners = also_bought(pairs, spaghetti[0], 2)["also_bought"]
    assert set(partners) == set(spaghetti[1:])
