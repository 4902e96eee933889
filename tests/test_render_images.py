"""Chart PNGs for emails: real kaleido + Chromium, one browser session for all charts of an email."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import plotly.graph_objects as go
import pytest
from render_fixtures import require_chromium

from report_lib.errors import BrowserNotFoundError, RenderError
from report_lib.record import FIGURE_PREFIX
from report_lib.render.images import PngSession, figure_png, figure_pngs, record_figures


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def test_record_figures_picks_the_recorded_figures_only() -> None:
    figure = {"data": [], "layout": {}}
    records = {FIGURE_PREFIX + "trend": figure, "store": "S01", FIGURE_PREFIX + "broken": "not a figure", "kpis": []}
    assert record_figures(records) == {"trend": figure}


def test_figures_become_pngs_of_the_requested_size_in_one_session() -> None:
    require_chromium()
    trend = json.loads(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])).to_json())
    bars = json.loads(go.Figure(go.Bar(x=["a", "b"], y=[2, 1])).to_json())
    with PngSession() as session:
        first = figure_pngs({"trend": trend, "bars": bars}, width=300, height=150, scale=2, session=session)
        again = figure_png(bars, 200, 100, scale=1, session=session)  # the same browser, a second email
    assert list(first) == ["trend", "bars"]
    assert [png_size(png) for png in first.values()] == [(600, 300), (600, 300)]
    assert first["trend"] != first["bars"]
    assert png_size(again) == (200, 100)
    with pytest.raises(RenderError, match="outside its `with` block"):
        session.pngs({"bars": bars})


def test_without_a_browser_images_raise_browser_not_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPORT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(BrowserNotFoundError, match="REPORT_CHROMIUM"):
        figure_pngs({"x": {"data": [], "layout": {}}})


@pytest.mark.parametrize("bad", ["a string", {"data": "not a list"}])
def test_non_figures_are_refused_before_any_browser_starts(bad: object) -> None:
    with pytest.raises(RenderError, match="is not plotly JSON"):
        figure_pngs({"x": bad})  # type: ignore[dict-item]


def test_no_figures_need_no_browser() -> None:
    assert figure_pngs({}) == {}
