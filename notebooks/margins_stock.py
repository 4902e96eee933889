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
# # Margins and stock
# Revenue, cost and margin by category and product for the period (negative-margin products flagged), then the
# products to reorder: stock on hand against reorder points and days of cover at recent sales.

# %% tags=["remove-cell"]
from report_lib.charts import plot_bars
from report_lib.context import StoreReport
from report_lib.display import note, table
from report_lib.inventory import reorder_list, stock_alerts
from report_lib.margins import compute_margins, margin_summary_note
from report_lib.record import record, record_figure
from report_lib.render.plotting import setup_notebook_plotting
from report_lib.warehouse.loaders.inventory import load_sales_velocity, load_stock
from report_lib.warehouse.loaders.products import load_product_sales

setup_notebook_plotting()

# %% tags=["parameters"]
store = "S01"
store_name = "Demo store"
currency = "USD"
period_start = "2024-03-04"
period_end = "2024-03-10"
period_label = "2024-W10"
low_cover_days = 7.0

# %% tags=["remove-cell"]
report = StoreReport.from_notebook(globals())
report.record_header()
sales = load_product_sales(report.engine, stores=store, start=report.period.start, end=report.period.end)
by_category = compute_margins(sales, by="category")
by_product = compute_margins(sales, by="sku")
alerts = stock_alerts(
    load_stock(report.engine, store=store),  # the latest snapshot: reorder now
    load_sales_velocity(report.engine, store=store, end=report.period.end, days=28),
    lead_time_days=low_cover_days,  # below this many days of cover: reorder
)
to_reorder = reorder_list(alerts)
record("margins_by_category", by_category)
record("negative_margin_skus", by_product.loc[by_product["negative_margin"].fillna(False), "sku"].tolist())
record("reorder", to_reorder)

# %% [markdown]
# ## Margin by category

# %%
note(margin_summary_note(by_category))

# %%
table(
    by_category,
    currency=currency,
    money=["revenue", "cost", "margin"],
    percent=["margin_pct"],
    shares=["contribution"],
    counts=["units"],
)

# %%
fig = plot_bars(by_category, category="category", value="margin", title="Margin by category", currency=currency)
record_figure("margins", fig)
fig

# %% [markdown]
# ## Products sold at a loss

# %%
table(
    by_product[by_product["negative_margin"].fillna(False)],
    currency=currency,
    money=["revenue", "cost", "margin"],
    percent=["margin_pct"],
)

# %% [markdown]
# ## Reorder list
# Out of stock first, then below the reorder point, then low cover.

# %%
table(to_reorder, decimals={"daily_velocity": 1, "days_of_cover": 1}, limit=None)
