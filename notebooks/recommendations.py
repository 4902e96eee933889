# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Product recommendations
# Products bought together, from the last 13 weeks of baskets: support (share of orders with both), confidence
# (share of orders with the first that also have the second) and lift (how much more often than by chance).

# %% tags=["remove-cell"]
import datetime as dt

from report_lib.context import StoreReport
from report_lib.display import table
from report_lib.recommend import also_bought_table, co_purchase, name_items, popular_items, top_pairs
from report_lib.record import record
from report_lib.render.plotting import setup_notebook_plotting
from report_lib.warehouse.loaders.baskets import load_basket_items, load_products

setup_notebook_plotting()

# %% tags=["parameters"]
store = "S01"
store_name = "Demo store"
currency = "USD"
period_start = "2024-03-04"
period_end = "2024-03-10"
period_label = "2024-W10"
min_support = 0.005

# %% tags=["remove-cell"]
report = StoreReport.from_notebook(globals())
report.record_header()
baskets = load_basket_items(
    report.engine, stores=store, start=report.period.end - dt.timedelta(days=90), end=report.period.end
)
products = load_products(report.engine)
pairs = co_purchase(baskets, min_support=min_support)
popular = popular_items(baskets, n=20)
best_pairs = name_items(top_pairs(pairs, 15), products)
record("top_pairs", best_pairs)

# %% [markdown]
# ## Products bought together

# %%
table(best_pairs, shares=["support", "confidence_a_to_b", "confidence_b_to_a"], decimals={"lift": 1})

# %% [markdown]
# ## Bought this, also bought
# For the ten best sellers; items with no strong partner fall back to the most popular products (marked).

# %%
also = name_items(
    also_bought_table(pairs, popular["item"].head(10), n=3, popularity=popular),
    products,
    item_cols=("bought", "also_bought"),
)
record("also_bought", also)
table(also, shares=["confidence"], decimals={"lift": 1}, limit=None)
