import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.basedatatypes import BaseTraceType

from report_lib.charts import (
    DOWN_COLOR,
    PALETTE,
    TEMPLATE_NAME,
    UP_COLOR,
    apply_theme,
    plot_anomalies,
    plot_bars,
    plot_forecast,
    plot_kpi_change,
    plot_scatter,
    plot_trend,
    plot_weekday_profile,
)
from report_lib.errors import DataValidationError

DAYS = pd.date_range("2024-03-04", periods=6, freq="D", name="day")
SERIES = pd.Series([10.0, 12.0, 9.0, 14.0, 30.0, 11.0], index=DAYS, name="revenue")
FORECAST = pd.DataFrame(
    {
        "day": pd.date_range("2024-03-10", periods=3, freq="D"),
        "mean": [11.0, 12.0, 13.0],
        "lo80": [9.0, 9.5, 10.0],
        "hi80": [13.0, 14.5, 16.0],
        "lo95": [8.0, 8.0, 8.5],
        "hi95": [14.0, 16.0, 17.5],
    }
)
CATEGORIES = pd.DataFrame({"category": ["Toys", "Electronics", "Grocery"], "change": [-700.0, -4_100.0, 300.0]})


def ys(trace: BaseTraceType) -> list[float]:
    return [float(v) for v in trace.y]


def xs(trace: BaseTraceType) -> list[object]:
    return list(trace.x)


FLAGS = pd.DataFrame({"day": [DAYS[4]], "direction": ["up"]})
PROFILE = pd.DataFrame({"mean": [1.0, 2, 3, 4, 5, 6, 7]}, index=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
KPIS = pd.DataFrame({"label": ["Revenue", "Orders"], "change_pct": [-12.3, 4.0]})
BUILDERS = {
    "trend": lambda: plot_trend(SERIES, window=3),
    "forecast": lambda: plot_forecast(SERIES, FORECAST),
    "bars": lambda: plot_bars(CATEGORIES, category="category", value="change"),
    "weekday": lambda: plot_weekday_profile(PROFILE),
    "anomalies": lambda: plot_anomalies(SERIES, FLAGS),
    "scatter": lambda: plot_scatter(CATEGORIES, x="change", y="change"),
    "kpi_change": lambda: plot_kpi_change(KPIS),
    "empty": lambda: plot_trend(SERIES.iloc[0:0]),
}


@pytest.mark.parametrize("chart", list(BUILDERS))
def test_every_chart_carries_the_theme(chart: str) -> None:
    fig = BUILDERS[chart]()
    layout = fig.layout.template.layout
    assert layout.paper_bgcolor == "white" and layout.plot_bgcolor == "white"
    assert list(layout.colorway) == list(PALETTE)
    assert layout.font.size == 14


def test_importing_charts_changes_no_global_plotly_state() -> None:
    code = (
        "import plotly.io as pio; import report_lib.charts; "
        "print(pio.templates.default, 'store_reports' in pio.templates)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["plotly", "False"]


@pytest.fixture
def restore_plotly() -> Iterator[None]:
    default = pio.templates.default
    configs = {name: dict(pio.renderers[name].config) for name in ("notebook", "notebook_connected")}
    yield
    pio.templates.default = default
    for name, config in configs.items():
        pio.renderers[name].config = config


@pytest.mark.usefixtures("restore_plotly")
def test_apply_theme_registers_the_default_and_hides_the_logo() -> None:
    assert apply_theme() == TEMPLATE_NAME
    assert pio.templates.default == TEMPLATE_NAME
    assert pio.templates[TEMPLATE_NAME].layout.paper_bgcolor == "white"
    assert pio.renderers["notebook"].config["displaylogo"] is False
    assert go.Figure().layout.template.layout.colorway == tuple(PALETTE)  # ad-hoc figures now match


def test_trend_series_with_moving_average() -> None:
    fig = plot_trend(SERIES, window=3, title="Revenue", currency="EUR")
    line, average = fig.data
    assert ys(line) == SERIES.tolist() and xs(line) == list(DAYS)
    assert ys(average)[2:] == pytest.approx([31 / 3, 35 / 3, 53 / 3, 55 / 3])
    assert np.isnan(ys(average)[:2]).all()
    assert average.line.dash == "dash" and average.line.color == line.line.color == PALETTE[0]
    assert fig.layout.yaxis.tickprefix == "€" and fig.layout.title.text == "Revenue"


def test_trend_of_a_wide_frame_gives_one_line_per_column() -> None:
    frame = pd.DataFrame({"A": [1.0, 2.0], "B": [3.0, 4.0]}, index=DAYS[:2])
    fig = plot_trend(frame)
    assert [t.name for t in fig.data] == ["A", "B"]
    assert [ys(t) for t in fig.data] == [[1.0, 2.0], [3.0, 4.0]]
    assert [t.line.color for t in fig.data] == list(PALETTE[:2])


def test_empty_input_says_no_data() -> None:
    fig = plot_trend(SERIES.iloc[0:0])
    assert len(fig.data) == 0
    assert fig.layout.annotations[0].text == "No data for this period"
    assert plot_bars(CATEGORIES.iloc[0:0], category="category", value="change").layout.annotations[0].text


def test_forecast_bands_and_lines() -> None:
    fig = plot_forecast(SERIES, FORECAST)
    assert [t.name for t in fig.data] == [None, "95% interval", None, "80% interval", "actual", "forecast"]
    assert [ys(t) for t in fig.data[:4]] == [[14.0, 16.0, 17.5], [8.0, 8.0, 8.5], [13.0, 14.5, 16.0], [9.0, 9.5, 10.0]]
    assert fig.data[1].fill == "tonexty" and fig.data[3].fill == "tonexty"
    assert ys(fig.data[4]) == SERIES.tolist()
    assert ys(fig.data[5]) == [11.0, 12.0, 13.0] and xs(fig.data[5]) == list(FORECAST["day"])


def test_forecast_needs_its_interval_columns() -> None:
    with pytest.raises(DataValidationError, match="missing columns \\['hi95'\\]"):
        plot_forecast(SERIES, FORECAST.drop(columns=["hi95"]))


def test_horizontal_bars_sorted_with_the_largest_on_top() -> None:
    bar = plot_bars(CATEGORIES, category="category", value="change", currency="USD").data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == ["Electronics", "Toys", "Grocery"]  # plotly draws the first bar at the bottom
    assert [float(v) for v in bar.x] == [-4_100.0, -700.0, 300.0]
    assert list(bar.marker.color) == [DOWN_COLOR, DOWN_COLOR, UP_COLOR]


def test_vertical_bars_keep_the_given_order_when_unsorted() -> None:
    bar = plot_bars(CATEGORIES, category="category", value="change", horizontal=False, sort=False).data[0]
    assert bar.orientation == "v" and list(bar.x) == ["Toys", "Electronics", "Grocery"]
    assert ys(bar) == [-700.0, -4_100.0, 300.0]


def test_weekday_profile_bars() -> None:
    profile = pd.DataFrame({"mean": [5.0, 1, 1, 1, 2, 9, np.nan], "days": [2, 2, 2, 2, 2, 2, 0]})
    profile.index = pd.Index(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], name="weekday")
    bar = plot_weekday_profile(profile).data[0]
    assert list(bar.x) == list(profile.index)
    assert ys(bar)[:6] == [5.0, 1, 1, 1, 2, 9]


def test_anomaly_markers_sit_on_the_series() -> None:
    flags = pd.DataFrame(
        {"day": [DAYS[4], DAYS[2], pd.Timestamp("2030-01-01")], "direction": ["up", "down", "up"]}
    )  # the 2030 flag is outside the series and is not drawn
    fig = plot_anomalies(SERIES, flags)
    line, up, down = fig.data
    assert ys(line) == SERIES.tolist()
    assert xs(up) == [DAYS[4]] and ys(up) == [30.0] and up.marker.symbol == "triangle-up"
    assert xs(down) == [DAYS[2]] and ys(down) == [9.0] and down.marker.color == DOWN_COLOR


def test_scatter_one_trace_per_group() -> None:
    frame = pd.DataFrame({"recency": [1, 5, 9, 2], "spend": [100.0, 20.0, 5.0, 80.0], "segment": ["B", "A", "A", "B"]})
    fig = plot_scatter(frame, x="recency", y="spend", color="segment")
    assert [t.name for t in fig.data] == ["A", "B"]
    assert ys(fig.data[0]) == [20.0, 5.0] and list(fig.data[1].x) == [1, 2]
    with pytest.raises(DataValidationError, match="missing columns \\['size'\\]"):
        plot_scatter(frame, x="recency", y="spend", color="size")


def test_kpi_change_leaves_out_kpis_without_comparison() -> None:
    kpis = pd.DataFrame({"label": ["Revenue", "Orders", "Margin %"], "change_pct": [-12.3, np.nan, 4.0]})
    bar = plot_kpi_change(kpis).data[0]
    assert list(bar.y) == ["Revenue", "Margin %"] and [float(v) for v in bar.x] == [-12.3, 4.0]
    assert plot_kpi_change(kpis.assign(change_pct=np.nan)).layout.annotations[0].text == "No comparison available"
