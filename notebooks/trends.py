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
# # Trends
# How revenue moves by day, week and month: moving averages, growth rates, the seasonal pattern behind it, the
# weekday profile and the best and worst days of the period.

# %% tags=["remove-cell"]
from report_lib.charts import plot_trend, plot_weekday_profile
from report_lib.context import StoreReport
from report_lib.display import attempt, table
from report_lib.record import record, record_figure
from report_lib.render.plotting import setup_notebook_plotting
from report_lib.trends import best_and_worst_days, decompose, growth_rates, resample_metric, weekday_profile

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
daily = report.daily()

# %% [markdown]
# ## Revenue by week, with a 4-week moving average

# %%
weekly = resample_metric(daily, freq="W", metric="revenue")
fig = plot_trend(weekly, title="Weekly revenue", y_title="Revenue", window=4, currency=currency)
record_figure("weekly", fig)
fig

# %% [markdown]
# ## Monthly revenue and growth
# Month-on-month and year-on-year growth, in percent; the current month is left out until it is complete.

# %%
monthly = resample_metric(daily, freq="M", metric="revenue")
growth = growth_rates(monthly).reset_index()
record("monthly_revenue", monthly.tail(12))
table(growth.tail(12), currency=currency, money=["value"], percent=["pop_pct", "yoy_pct"])

# %% [markdown]
# ## Seasonal pattern
# A seasonal-trend decomposition (STL): the trend without the weekly (or yearly) rhythm.

# %%
components = attempt(decompose, weekly if report.weekly_only else resample_metric(daily, freq="D"))
fig = attempt(plot_trend, components, title="Trend and seasonal components", currency=currency)
fig

# %% [markdown]
# ## Weekday profile and best and worst days
# Average revenue by weekday over the last two years, and the period's best and worst trading days.

# %%
profile = attempt(weekday_profile, daily)
record("weekday_profile", profile)
attempt(plot_weekday_profile, profile, title="Average revenue by weekday", currency=currency)

# %%
table(attempt(best_and_worst_days, report.in_period(daily)), currency=currency, money=["value"])
