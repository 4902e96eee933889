"""Chart PNGs for emails: real kaleido + Chromium, one browser session for all charts of an email."""

from __future__ import annotations

import json
import struct

import plotly.graph_objects as go
import pytest
from render_fixtures import require_chromium

from report_lib.errors import RenderError
from report_lib.record import FIGURE_PREFIX
from report_lib.render.images import figure_pngs, record_figures


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def test_record_figures_picks_the_recorded_figures_only() -> None:
    figure = {"data": [], "layout": {}}
    records = {FIGURE_PREFIX + "trend": figure, "store": "S01", FIGURE_PREFIX + "broken": "not a figure", "kpis": []}
    assert record_figures(records) == {"trend": figure}


def test_figures_become_pngs_of_the_requested_size() -> None:
    require_chromium()
    figures = {
        "trend": json.loads(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])).to_json()),
        "bars": json.loads(go.Figure(go.Bar(x=["a", "b"], y=[2, 1])).to_json()),
    }
    images = figure_pngs(figures, width=300, height=150, scale=2)
    assert list(images) == ["trend", "bars"]
    assert [png_size(png) for png in images.values()] == [(600, 300), (600, 300)]
    assert images["trend"] != images["bars"]


@pytest.mark.parametrize("bad", ["a string", {"data": "not a list"}])
def test_non_figures_are_refused_before_any_browser_starts(bad: object) -> None:
    with pytest.raises(RenderError, match="is not plotly JSON"):
        figure_pngs({"x": bad})  # type: ignore[dict-item]


def test_no_figures_need_no_browser() -> None:
    assert figure_pngs({}) == {}
