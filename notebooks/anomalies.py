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
# # Anomalies
# Days whose revenue is far from what the weekday and recent level lead one to expect, by the robust modified
# z-score (Iglewicz & Hoaglin: 0.6745·(x − median)/MAD). Each flag has a direction and a severity.

# %% tags=["remove-cell"]
from report_lib.anomalies import detect_anomalies
from report_lib.charts import plot_anomalies
from report_lib.context import StoreReport
from report_lib.display import attempt, table
from report_lib.record import record, record_figure
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
anomaly_z = 3.5

# %% tags=["remove-cell"]
report = StoreReport.from_notebook(globals())
report.record_header()
daily = report.daily()
flags = attempt(report.own, attempt(detect_anomalies, report.chain_daily(), method="robust", threshold=anomaly_z))
in_period = attempt(report.in_period, flags)
record("anomalies", in_period)
record("anomalies_history", flags)

# %% [markdown]
# ## Flags in this period

# %%
table(in_period, currency=currency, money=["value", "expected"], decimals={"score": 1})

# %% [markdown]
# ## The last 26 weeks
# Flags of the whole window, so a flag of this period can be read against earlier ones.

# %%
series = resample_metric(daily, metric="revenue").tail(182)
fig = attempt(
    plot_anomalies,
    series,
    attempt(report.in_window, flags, start=series.index.min()),
    title="Revenue and flagged days",
    y_title="Revenue",
    currency=currency,
)
record_figure("anomalies", fig)
fig
