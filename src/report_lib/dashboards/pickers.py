"""The pickers every dashboard shares: stores (and regions), period, comparison, metric; preset from the link.

Periods are counted back from the last day with data (``DashboardSession.last_day``), not from today: a warehouse
refreshed last night and an imported file that ends in March both open on their latest complete figures.
"""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets

from report_lib.dashboards import ui
from report_lib.dashboards.session import COMPARISONS, METRICS, DashboardSession
from report_lib.periods import Period, label_for

RELATIVE_PERIODS = (
    ("Last 7 days", "last-7-days"),
    ("Last 28 days", "last-28-days"),
    ("Last complete week", "last-week"),
    ("Last complete month", "last-month"),
)
COMPARISON_LABELS = {"previous": "Previous period", "last_year": "Same period last year"}
METRIC_LABELS = {
    "revenue": "Revenue",
    "orders": "Orders",
    "units": "Units",
    "customers": "Customers",
    "margin": "Gross margin",
    "returns": "Returns",
}
MONEY_METRICS = frozenset({"revenue", "margin", "returns"})
MONTHS, WEEKS = 6, 8


def period_options(last_day: dt.date, *, extra: str | None = None) -> list[tuple[str, str]]:
    """Relative periods, the last complete ISO weeks and months before ``last_day`` (inclusive), and ``extra``."""
    options = list(RELATIVE_PERIODS)
    week_end = last_day - dt.timedelta(days=(last_day.weekday() + 1) % 7)  # the last Sunday on or before last_day
    for back in range(WEEKS):
        end = week_end - dt.timedelta(weeks=back)
        start = end - dt.timedelta(days=6)
        options.append((f"Week {label_for(start, end)} ({start:%d %b} – {end:%d %b %Y})", label_for(start, end)))
    month = (last_day + dt.timedelta(days=1)).replace(day=1)  # a month counts once its last day has data
    for _ in range(MONTHS):
        month = (month - dt.timedelta(days=1)).replace(day=1)
        options.append((f"{month:%B %Y}", f"{month:%Y-%m}"))
    if extra and extra not in {value for _, value in options}:
        options.insert(0, (f"Period {extra}", extra))
    return options


def selection_picker(session: DashboardSession, *, regions: bool = True) -> widgets.Dropdown:
    """The user's stores (and, with ``regions``, all of them and each region); preset from the link."""
    options = [(selection.label, selection.key) for selection in session.warehouse.selections(regions=regions)]
    preset = session.link.selection
    if preset is not None and not regions and not preset.startswith("store:"):
        preset = None
    return ui.dropdown("Stores" if regions else "Store", options, preset, width="300px")


def period_picker(session: DashboardSession) -> widgets.Dropdown:
    default = session.link.period or "last-28-days"
    return ui.dropdown("Period", period_options(session.last_day, extra=session.link.period), default, width="320px")


def comparison_picker(session: DashboardSession) -> widgets.Dropdown:
    default = session.link.comparison or session.parameters.defaults.comparison
    options = [(COMPARISON_LABELS[name], name) for name in COMPARISONS]
    return ui.dropdown("Compare with", options, default, width="280px")


def metric_picker(session: DashboardSession, metrics: tuple[str, ...] = METRICS) -> widgets.Dropdown:
    options = [(METRIC_LABELS[name], name) for name in metrics]
    return ui.dropdown("Metric", options, session.link.metric or metrics[0], width="200px")


def describe_period(period: Period) -> str:
    """'2024-W10 · 04 Mar – 10 Mar 2024', or '28 days · 27 Oct – 23 Nov 2026' for a plain range."""
    name = f"{period.days} days" if ":" in period.label else period.label
    if period.days == 1:
        return f"{name} · {period.start:%a %d %b %Y}"
    return f"{name} · {period.start:%d %b} – {period.end:%d %b %Y}"
