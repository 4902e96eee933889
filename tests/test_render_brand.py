"""Number formats and tones shared by the report header, emails and the digest; one palette everywhere."""

from __future__ import annotations

import math
from typing import Any

import pytest

from report_lib import charts
from report_lib.render.brand import (
    PALETTE,
    TEMPLATE_DIR,
    change_tone,
    format_change,
    format_value,
    kpi_tiles,
    text_list,
)

MINUS = "\u2212"  # report_lib.insights writes the typographic minus


@pytest.mark.parametrize(
    ("value", "unit", "currency", "expected"),
    [
        (123456.7, "money", "EUR", "€123,457"),
        (-1234.4, "money", "USD", f"{MINUS}$1,234"),
        (12.345, "money", "EUR", "€12.35"),
        (99.5, "money", "SEK", "SEK 99.50"),
        (2345, "count", None, "2,345"),
        (5.55, "percent", None, "5.5%"),  # 5.55 is 5.5499... in binary
        (2.3456, "ratio", None, "2.35"),
        (2.3456, None, None, "2.35"),
        (None, "money", "EUR", "n/a"),
        (math.nan, "count", None, "n/a"),
        (math.inf, "ratio", None, "n/a"),
        (True, "count", None, "True"),
        ("12", "count", None, "12"),
    ],
)
def test_format_value(value: Any, unit: str | None, currency: str | None, expected: str) -> None:
    assert format_value(value, unit, currency=currency) == expected


@pytest.mark.parametrize(
    ("row", "change", "tone"),
    [
        ({"kpi": "revenue", "unit": "money", "change_pct": 12.23}, "+12.2%", "good"),
        ({"kpi": "revenue", "unit": "money", "change_pct": -0.04}, "0.0%", "flat"),
        ({"kpi": "orders", "unit": "count", "change_pct": -2.29}, f"{MINUS}2.3%", "bad"),
        ({"kpi": "return_rate", "unit": "percent", "change": 1.4, "change_pct": 34.0}, "+1.4 pp", "bad"),
        ({"kpi": "return_rate", "unit": "percent", "change": -0.8}, f"{MINUS}0.8 pp", "good"),
        ({"kpi": "margin_pct", "unit": "percent", "change": 0.049}, "0.0 pp", "flat"),
        ({"kpi": "margin_pct", "unit": "percent", "change": None, "change_pct": 3.0}, "no comparison", "flat"),
        ({"kpi": "revenue", "unit": "money", "change_pct": None}, "no comparison", "flat"),
        ({"kpi": "revenue", "unit": "money"}, "no comparison", "flat"),
    ],
)
def test_change_and_tone(row: dict[str, Any], change: str, tone: str) -> None:
    assert (format_change(row), change_tone(row)) == (change, tone)


@pytest.mark.parametrize(
    ("comparison", "expected"),
    [
        ("previous", [("+10.0%", "good"), ("+1.0 pp", "bad")]),
        ("last_year", [("\u22125.0%", "bad"), ("\u22122.0 pp", "good")]),
        ("unknown", [("+10.0%", "good"), ("+1.0 pp", "bad")]),
    ],
)
def test_tiles_follow_the_recorded_comparison(comparison: str, expected: list[tuple[str, str]]) -> None:
    rows = [
        {"kpi": "revenue", "unit": "money", "value": 110.0, "change_pct": 10.0, "change_pct_ly": -5.0},
        {"kpi": "return_rate", "unit": "percent", "value": 4.0, "change": 1.0, "change_ly": -2.0},
    ]
    tiles = kpi_tiles(rows, currency="EUR", comparison=comparison)
    assert [(tile["change"], tile["tone"]) for tile in tiles] == expected


def test_kpi_tiles_skip_non_rows_and_flag_approximate_values() -> None:
    rows = [{"kpi": "revenue", "label": "Revenue", "unit": "money", "value": 10.0, "approximate": True}, "junk"]
    assert kpi_tiles(rows, currency="GBP") == [
        {"label": "Revenue", "value": "£10.00", "change": "no comparison", "tone": "flat", "approximate": "approx."}
    ]
    assert kpi_tiles(None) == [] and kpi_tiles({"kpi": "revenue"}) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("One.", ["One."]), ("  ", []), (["a", "", " ", 3], ["a", "3"]), (None, [])],
)
def test_text_list(value: Any, expected: list[str]) -> None:
    assert text_list(value) == expected


def test_report_css_email_and_charts_share_the_palette() -> None:
    css = (TEMPLATE_DIR / "nbconvert" / "store_report" / "static" / "report.css").read_text(encoding="utf-8").lower()
    for name in ("ink", "muted", "accent", "rule", "tile", "good", "bad"):
        assert PALETTE[name].lower() in css, name
    assert (PALETTE["good"], PALETTE["bad"]) == (charts.UP_COLOR, charts.DOWN_COLOR)
