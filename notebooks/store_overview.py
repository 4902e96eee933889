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
# # Store overview
# The headline numbers of the period against the previous period and the same period last year, what moved them,
# and the trend behind them. Read this first; the other reports go deeper.

# %% tags=["remove-cell"]
from report_lib.charts import plot_kpi_change, plot_trend
from report_lib.context import StoreReport
from report_lib.display import kpi_table
from report_lib.record import record_figure
from report_lib.render.plotting import setup_notebook_plotting
from report_lib.trends import resample_metric

setup_notebook_plotting()

# %% tags=["parameters"]
store = "S01"
store_name = "Demo store"
currency = "USD"
period_start = "2024-03-04"
period_end = "2024-03-10"
period_label = "2024-W10"
comparison = "previous"

# %% tags=["remove-cell"]
report = StoreReport.from_notebook(globals())
kpis = report.record_header()

# %% [markdown]
# ## Key figures
# Each figure against the previous period and the same period last year (52 weeks earlier, so weekdays line up).

# %%
kpi_table(kpis, currency=currency)

# %% [markdown]
# ## What changed

# %%
fig = plot_kpi_change(kpis, title="Change against the previous period")
record_figure("kpi_change", fig)
fig

# %% [markdown]
# ## Weekly revenue, last two years

# %%
weekly = resample_metric(report.daily(), freq="W", metric="revenue")
fig = plot_trend(weekly, title="Weekly revenue", y_title="Revenue", window=4, currency=currency)
record_figure("trend", fig)
fig
