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
# # Customer segments
# Customers by recency, frequency and monetary value (RFM, scored in quintiles), named segments, and the natural
# groups k-means finds in the same numbers. Anonymous purchases are not included.

# %% tags=["remove-cell"]
from report_lib.charts import plot_bars, plot_scatter
from report_lib.context import StoreReport
from report_lib.display import table
from report_lib.record import record, record_figure
from report_lib.render.plotting import setup_notebook_plotting
from report_lib.segments import cluster_customers, name_segments, score_rfm, segment_profile
from report_lib.warehouse.loaders.customers import load_customer_rfm

setup_notebook_plotting()

# %% tags=["parameters"]
store = "S01"
store_name = "Demo store"
currency = "USD"
period_start = "2024-03-04"
period_end = "2024-03-10"
period_label = "2024-W10"

# %% tags=["remove-cell"]
report = StoreReport.from_notebook(globals())
report.record_header()
rfm = load_customer_rfm(report.engine, stores=store, as_of=report.period.end, start=report.history_start)
segmented = name_segments(score_rfm(rfm))
profile = segment_profile(segmented)
clusters = cluster_customers(rfm, seed=0)
record("customers", len(rfm))
record("segment_profile", profile)
record("clusters_k", clusters.k)

# %% [markdown]
# ## Segments
# Customers, their share, and their average recency (days since the last purchase), frequency (orders) and
# spend over the last two years.

# %%
table(
    profile,
    currency=currency,
    money=["monetary_mean", "revenue"],
    shares=["share", "revenue_share"],
    decimals={"recency_mean": 0, "frequency_mean": 1},
)

# %%
fig = plot_bars(profile, category="segment", value="customers", title="Customers by segment", value_title="Customers")
record_figure("segments", fig)
fig

# %% [markdown]
# ## Natural groups (k-means)
# k chosen by silhouette; each dot is a customer (a sample of at most 2,000).

# %%
fig = plot_scatter(
    clusters.assignments.head(2000),
    x="frequency",
    y="monetary",
    color="cluster",
    title=f"{clusters.k} customer groups",
    x_title="Orders",
    y_title="Spend",
)
fig
