"""The one look of reports, PDFs, emails and the portal: product name, palette, number formats, Jinja2 setup."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from report_lib.insights import MISSING, format_kpi, format_pct

PRODUCT_NAME = "Store Performance Reports"
TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "templates"

# Neutral, print-friendly palette. Favourable/unfavourable are the charts' colourblind-safe up/down colours
# (report_lib.charts.UP_COLOR / DOWN_COLOR); templates/nbconvert/store_report/static/report.css repeats these values.
PALETTE: dict[str, str] = {
    "ink": "#1f2933",
    "muted": "#616e7c",
    "accent": "#1d4e89",
    "accent_text": "#ffffff",
    "rule": "#d9dee4",
    "tile": "#f5f7fa",
    "good": "#0072B2",
    "bad": "#D55E00",
    "flat": "#616e7c",
}
FONT_STACK = "'DejaVu Sans', Arial, Helvetica, sans-serif"  # as report_lib.charts.FONT

LOWER_IS_BETTER = frozenset({"return_rate", "returns", "return_units", "stockouts", "shrink"})
NO_COMPARISON = "no comparison"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def format_value(value: Any, unit: str | None = None, *, currency: str | None = None) -> str:
    """A KPI value as the insights sentences write it (report_lib.insights formats numbers in one place)."""
    number = _number(value)
    if number is None:
        return MISSING if value is None or isinstance(value, float) else str(value)
    return format_kpi(number, unit or "ratio", currency or "USD")


# comparison -> (label, key of the change for percent KPIs (points), key of the change in percent); kpis.KPI_COLUMNS
COMPARISONS: dict[str, tuple[str, str, str]] = {
    "previous": ("the previous period", "change", "change_pct"),
    "last_year": ("the same period last year", "change_ly", "change_pct_ly"),
}


def _change(row: Mapping[str, Any], comparison: str) -> tuple[float | None, bool]:
    """The change to show and whether it is in percentage points (percent KPIs) rather than percent."""
    _, points_key, pct_key = COMPARISONS.get(comparison, COMPARISONS["previous"])
    points = row.get("unit") == "percent"
    return _number(row.get(points_key if points else pct_key)), points


def format_change(row: Mapping[str, Any], *, comparison: str = "previous") -> str:
    """The change against the comparison period: percentage points for percent KPIs, else percent."""
    change, points = _change(row, comparison)
    if change is None:
        return NO_COMPARISON
    text = format_pct(change, signed=True)
    return text.removesuffix("%") + " pp" if points else text


def change_tone(row: Mapping[str, Any], *, comparison: str = "previous") -> str:
    """'good', 'bad' or 'flat' for colouring a KPI's change (a rising return rate is bad)."""
    change, _ = _change(row, comparison)
    if change is None or round(change, 1) == 0:
        return "flat"
    rising = change > 0
    return "bad" if rising == (row.get("kpi") in LOWER_IS_BETTER) else "good"


def comparison_label(comparison: Any) -> str:
    """'the previous period' / 'the same period last year' for the recorded comparison ('' when unknown)."""
    return COMPARISONS[comparison][0] if comparison in COMPARISONS else ""


def kpi_tiles(kpis: Any, *, currency: str | None = None, comparison: str = "previous") -> list[dict[str, str]]:
    """Display-ready KPI tiles from the overview's recorded ``kpis`` rows (anything else gives no tiles)."""
    if not isinstance(kpis, list):
        return []
    tiles = []
    for row in kpis:
        if not isinstance(row, Mapping):
            continue
        tiles.append(
            {
                "label": str(row.get("label") or row.get("kpi") or ""),
                "value": format_value(row.get("value"), row.get("unit"), currency=currency),
                "change": format_change(row, comparison=comparison),
                "tone": change_tone(row, comparison=comparison),
                "approximate": "approx." if row.get("approximate") else "",
            }
        )
    return tiles


def text_list(value: Any) -> list[str]:
    """Recorded insights as a list of sentences (a single string becomes one sentence)."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(item) for item in value if str(item).strip()]
    return []


def template_environment(folder: str) -> jinja2.Environment:
    """A Jinja2 environment on ``templates/<folder>`` that escapes HTML (and .j2 HTML templates) automatically."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR / folder),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals.update(product=PRODUCT_NAME, palette=PALETTE, font_stack=FONT_STACK)
    env.filters.update(value=format_value)
    return env
