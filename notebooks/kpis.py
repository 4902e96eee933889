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
# # KPIs
# Revenue, orders, units, customers, average order value, units per order, gross margin, margin % and return
# rate for the period, with absolute and percentage changes.

# %% tags=["remove-cell"]
from report_lib.charts import plot_kpi_change
from report_lib.context import StoreReport
from report_lib.display import kpi_table
from report_lib.record import record, record_figure
from report_lib.render.plotting import setup_notebook_plotting

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
# ## All KPIs
# "Previous" is the period just before, of the same length; "last year" is 52 weeks earlier. Figures flagged
# approximate come from weekly totals that straddle the period's edges.

# %%
kpi_table(kpis, currency=currency)

# %% [markdown]
# ## Against last year

# %%
fig = plot_kpi_change(kpis, column="change_pct_ly", title="Change against the same period last year")
record_figure("kpi_change_ly", fig)
fig

# %% tags=["remove-cell"]
record("kpi_values", {row.kpi: row.value for row in kpis.itertuples()})
