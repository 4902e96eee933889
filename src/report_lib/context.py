"""The one object a report notebook builds from its parameters: validated values, the period, the warehouse.

A notebook's second cell is ``report = StoreReport.from_params(store=store, ...)``: invalid values fail there,
before any query runs. Loading goes through the warehouse loaders (SQL push-down); analyses stay pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from report_lib.config import load_settings
from report_lib.insights import write_insights
from report_lib.kpis import kpis_from_totals
from report_lib.params import NotebookParameters, validate_notebook_parameters
from report_lib.periods import Period, label_for
from report_lib.record import record
from report_lib.trends import resample_metric
from report_lib.warehouse.engine import create_warehouse_engine
from report_lib.warehouse.loaders.daily import load_daily_metrics
from report_lib.warehouse.loaders.kpis import load_category_comparison, load_comparison_totals

HISTORY_DAYS = 2 * 364 + 7  # two years and a week: enough for last-year comparisons, STL and daily forecasts
WEEKLY_HISTORY_DAYS = 3 * 364 + 7  # weekly forecasts fit on two years and test on the weeks after


@dataclass(frozen=True)
class StoreReport:
    params: NotebookParameters
    database_url: str = field(repr=False)

    @classmethod
    def from_params(cls, **values: Any) -> StoreReport:
        """Validate the notebook's parameters (papermill passes dates as ISO strings)."""
        params = validate_notebook_parameters(values)
        return cls(params, load_settings().absolute_database_url())

    @classmethod
    def from_notebook(cls, namespace: Mapping[str, Any]) -> StoreReport:
        """From a notebook's globals: the values of its parameters cell (or the ones papermill injected)."""
        known = NotebookParameters.model_fields
        return cls.from_params(**{name: value for name, value in namespace.items() if name in known})

    @property
    def store(self) -> str:
        return self.params.store

    @property
    def currency(self) -> str:
        return self.params.currency

    @property
    def forecast_horizon(self) -> int:
        """Days ahead to forecast; weeks ahead (the same span, rounded up) for weekly-only stores."""
        days = self.params.forecast_horizon
        return -(-days // 7) if self.weekly_only else days

    @cached_property
    def period(self) -> Period:
        start, end = self.params.period_start, self.params.period_end
        return Period(start, end, self.params.period_label or label_for(start, end))

    @cached_property
    def engine(self) -> Engine:
        return create_warehouse_engine(self.database_url)

    @cached_property
    def history_start(self) -> dt.date:
        return self.period.end - dt.timedelta(days=HISTORY_DAYS)

    def daily(self) -> pd.DataFrame:
        """This store's daily (or weekly) metrics, from two years before the period's end to its end."""
        return self._daily.copy()

    @cached_property
    def _daily(self) -> pd.DataFrame:
        return load_daily_metrics(self.engine, stores=[self.store], start=self.history_start, end=self.period.end)

    def chain_daily(self) -> pd.DataFrame:
        """Every store's metrics of the same grain as this store over the same window, for comparisons with peers
        (a chain-wide day such as Black Friday is not one store's anomaly)."""
        chain = load_daily_metrics(self.engine, start=self.history_start, end=self.period.end)
        grain = "week" if self.weekly_only else "day"
        same_grain = chain.groupby("store_code")["grain"].transform(lambda grains: (grains == grain).all())
        return chain[same_grain.astype(bool)].reset_index(drop=True)

    def own(self, frame: pd.DataFrame, *, id_col: str = "store_code") -> pd.DataFrame:
        """The rows of ``frame`` that belong to this store."""
        return frame[frame[id_col] == self.store].reset_index(drop=True)

    def forecast_history(self, *, metric: str = "revenue") -> pd.Series:
        """The series to forecast: two years by day, or three years by week for weekly-only stores."""
        if not self.weekly_only:
            return resample_metric(self._daily, freq="D", metric=metric)
        start = self.period.end - dt.timedelta(days=WEEKLY_HISTORY_DAYS)
        weekly = load_daily_metrics(self.engine, stores=[self.store], start=start, end=self.period.end)
        return resample_metric(weekly, freq="W", metric=metric)

    @property
    def weekly_only(self) -> bool:
        """True when the store has weekly totals only (an imported weekly file): day-level views do not apply."""
        return bool((self._daily["grain"] == "week").any())

    def in_period(self, frame: pd.DataFrame, *, day_col: str = "day") -> pd.DataFrame:
        """The rows of ``frame`` whose day falls in the report period."""
        days = pd.to_datetime(frame[day_col])
        return frame[(days >= pd.Timestamp(self.period.start)) & (days <= pd.Timestamp(self.period.end))]

    def kpis(self) -> pd.DataFrame:
        """The KPI table: the period against the previous period and the same period last year."""
        return kpis_from_totals(load_comparison_totals(self.engine, store=self.store, period=self.period))

    def insights(self, kpis: pd.DataFrame) -> list[str]:
        """Plain sentences from the KPI table and the category changes that explain them."""
        changes = load_category_comparison(self.engine, store=self.store, period=self.period)
        return write_insights(
            kpis,
            category_changes=changes if not changes.empty else None,
            period=self.period,
            store_name=self.params.store_name,
            currency=self.currency,
        )

    def record_header(self) -> pd.DataFrame:
        """Record what every report's header shows (store, period, KPI tiles, insights); returns the KPI table."""
        kpis = self.kpis()
        for name, value in {
            "store": self.store,
            "store_name": self.params.store_name,
            "period_label": self.period.label,
            "currency": self.currency,
            "comparison": self.params.comparison,
            "kpis": kpis,
            "insights": self.insights(kpis),
        }.items():
            record(name, value)
        return kpis

    def in_window(self, frame: pd.DataFrame, *, start: Any, day_col: str = "day") -> pd.DataFrame:
        """The rows of ``frame`` from ``start`` to the period's end."""
        days = pd.to_datetime(frame[day_col])
        return frame[(days >= pd.Timestamp(start)) & (days <= pd.Timestamp(self.period.end))]
