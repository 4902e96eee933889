"""The one look of reports, PDFs, emails and the portal: product name, palette, number formats, Jinja2 setup."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

PRODUCT_NAME = "Store Performance Reports"
TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "templates"

# Neutral, print-friendly palette; templates/nbconvert/store_report/static/report.css uses the same values.
PALETTE: dict[str, str] = {
    "ink": "#1f2933",
    "muted": "#616e7c",
    "accent": "#1d4e89",
    "accent_text": "#ffffff",
    "rule": "#d9dee4",
    "tile": "#f5f7fa",
    "good": "#1e7b4f",
    "bad": "#b3261e",
    "flat": "#616e7c",
}
FONT_STACK = "'Segoe UI', 'Helvetica Neue', Arial, 'DejaVu Sans', sans-serif"

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}
LOWER_IS_BETTER = frozenset({"return_rate", "returns", "return_units", "stockouts", "shrink"})
MISSING = "n/a"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def format_value(value: Any, unit: str | None = None, *, currency: str | None = None) -> str:
    """A KPI value as people read it: money with the currency, counts with separators, percents with %."""
    number = _number(value)
    if number is None:
        return MISSING if value is None or isinstance(value, float) else str(value)
    if unit == "money":
        code = (currency or "").upper()
        digits = 0 if abs(number) >= 1000 else 2
        text = f"{abs(number):,.{digits}f}"
        sign = "-" if number < 0 else ""
        if code in CURRENCY_SYMBOLS:
            return f"{sign}{CURRENCY_SYMBOLS[code]}{text}"
        return f"{sign}{text} {code}".rstrip()
    if unit == "percent":
        return f"{number:.1f} %"
    if unit == "count":
        return f"{number:,.0f}"
    return f"{number:,.2f}"


def format_change(row: Mapping[str, Any]) -> str:
    """The change against the comparison period: percentage points for percent KPIs, else percent."""
    if row.get("unit") == "percent":
        points = _number(row.get("change"))
        if points is None:
            return "no comparison"
        return f"{points:+.1f} pp"
    pct = _number(row.get("change_pct"))
    return "no comparison" if pct is None else f"{pct:+.1f} %"


def change_tone(row: Mapping[str, Any]) -> str:
    """'good', 'bad' or 'flat' for colouring a KPI's change (a rising return rate is bad)."""
    key = "change" if row.get("unit") == "percent" else "change_pct"
    change = _number(row.get(key))
    if change is None or abs(change) < 0.05:
        return "flat"
    rising = change > 0
    return "bad" if rising == (row.get("kpi") in LOWER_IS_BETTER) else "good"


def kpi_tiles(kpis: Any, *, currency: str | None = None) -> list[dict[str, str]]:
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
                "change": format_change(row),
                "tone": change_tone(row),
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
