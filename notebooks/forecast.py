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
# # Forecast
# Revenue for the coming weeks with 80% and 95% intervals. The model (a seasonal ARIMA chosen by AIC) is checked
# against seasonal naive on a rolling-origin backtest; when it does not beat it, seasonal naive is used and this
# report says so.

# %% tags=["remove-cell"]
from report_lib.charts import plot_forecast
from report_lib.context import StoreReport
from report_lib.display import note, table
from report_lib.forecast import forecast_series
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
forecast_horizon = 28

# %% tags=["remove-cell"]
report = StoreReport.from_notebook(globals())
report.record_header()
history = report.forecast_history(metric="revenue")
result = forecast_series(history, horizon=report.forecast_horizon, min_folds=1)
record("forecast_model", result.model)
record("forecast_fallback", result.fallback)
record("forecast_mase", {"model": result.mase_model, "seasonal_naive": result.mase_naive})
record("forecast", result.forecast)

# %% [markdown]
# ## The forecast

# %%
note(result.note)

# %%
fig = plot_forecast(
    history.tail(182), result.forecast, title="Revenue forecast", y_title="Revenue", currency=currency, day_col="date"
)
record_figure("forecast", fig)
fig

# %% [markdown]
# ## Forecast table

# %%
table(result.forecast, currency=currency, money=["mean", "lo80", "hi80", "lo95", "hi95"], limit=None)

# %% [markdown]
# ## Backtest
# Mean absolute scaled error (MASE) on each fold: below 1 beats a naive forecast on the training data; the model
# is kept only when it beats seasonal naive on the same folds.

# %%
table(result.backtest, decimals={"mase_model": 2, "mase_naive": 2, "coverage80": 2, "coverage95": 2})
