"""What report notebooks show besides charts: readable tables, and notes where an analysis does not apply.

``attempt(analysis, *args)`` runs an analysis and turns "this store's data cannot feed it" (InsufficientDataError,
NeedsOrderLinesError) into a ``Note`` that displays as a sentence; a Note passed on to the next step is passed
through, so a chain of cells degrades to one clear message instead of a traceback.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import pandas as pd
from pandas.io.formats.style import Styler

from report_lib.errors import InsufficientDataError
from report_lib.insights import format_count, format_kpi, format_money, format_pct

T = TypeVar("T")


@dataclass(frozen=True)
class Note:
    """A sentence in place of a table or chart, saying why it is not there."""

    text: str

    def _repr_html_(self) -> str:
        return f'<p class="report-note">{html.escape(self.text)}</p>'

    def _repr_markdown_(self) -> str:
        return f"> {self.text}"

    def __str__(self) -> str:
        return self.text


def note(text: str | None) -> Note | None:
    """A Note of ``text``; None (nothing displayed) when there is nothing to say."""
    return Note(text) if text else None


def attempt(analysis: Callable[..., T], *args: Any, **kwargs: Any) -> T | Note:
    """``analysis(*args, **kwargs)``, or a Note when the data cannot feed it (or an input already is a Note)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, Note):
            return value
    try:
        return analysis(*args, **kwargs)
    except InsufficientDataError as exc:
        return Note(str(exc))


def table(
    frame: pd.DataFrame | Note,
    *,
    currency: str = "USD",
    money: Iterable[str] = (),
    percent: Iterable[str] = (),
    shares: Iterable[str] = (),
    counts: Iterable[str] = (),
    decimals: dict[str, int] | None = None,
    rename: dict[str, str] | None = None,
    limit: int | None = 25,
) -> Styler | Note:
    """A formatted, index-free table for a report: money with its currency, percentages, thousands separators."""
    if isinstance(frame, Note):
        return frame
    if frame.empty:
        return Note("Nothing to show for this period.")
    shown = frame.head(limit) if limit else frame
    formats: dict[str, Callable[[Any], str]] = {}
    formats.update({c: partial(format_money, currency=currency) for c in money})
    formats.update({c: format_pct for c in percent})  # already in percent
    formats.update({c: _share for c in shares})  # fractions of 1
    formats.update({c: format_count for c in counts})
    formats.update({c: partial(_fixed, decimals=d) for c, d in (decimals or {}).items()})
    # Styler does not escape by default: a product name or customer id with markup would run in the report
    styled = shown.style.format(na_rep="–", escape="html").format_index(escape="html", axis="columns")
    styled = styled.format({c: f for c, f in formats.items() if c in shown.columns}, na_rep="–", escape="html")
    if rename:
        labels = [html.escape(str(rename.get(c, c))) for c in shown.columns]
        styled = styled.relabel_index(labels, axis="columns")
    return styled.hide(axis="index")


def _share(value: float) -> str:
    return format_pct(value * 100)


def _fixed(value: float, *, decimals: int) -> str:
    return "" if pd.isna(value) else f"{value:,.{decimals}f}"


def kpi_table(kpis: pd.DataFrame, *, currency: str = "USD") -> Styler:
    """The KPI table as managers read it: value, previous, change %, last year, change % against last year."""
    rows = []
    for row in kpis.to_dict(orient="records"):
        unit = str(row["unit"])
        rows.append(
            {
                "KPI": str(row["label"]) + (" (approx.)" if row.get("approximate") else ""),
                "This period": format_kpi(row["value"], unit, currency),
                "Previous": format_kpi(row["previous"], unit, currency),
                "Change": format_pct(row["change_pct"], signed=True),
                "Last year": format_kpi(row["last_year"], unit, currency),
                "Change vs last year": format_pct(row["change_pct_ly"], signed=True),
            }
        )
    return pd.DataFrame(rows).style.format(escape="html").hide(axis="index")
