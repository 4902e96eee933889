"""Widget pieces shared by the dashboards: pickers, the status line, KPI tiles, tables, headings.

HTML is built from our own formatting functions and escaped values (store names and product names come from the
warehouse and are escaped like any other text). The status line is how a dashboard talks to its user: a spinner and
a sentence while it works, nothing when done, and a plain sentence when something could not be shown. It never
shows a traceback: unexpected errors are logged with a reference the sentence quotes.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets
import pandas as pd

from report_lib.display import Note, table
from report_lib.errors import AccessDeniedError, InsufficientDataError, ReportError
from report_lib.render.brand import kpi_tiles

log = logging.getLogger(__name__)

Options = Sequence[tuple[str, Any]]


def dropdown(description: str, options: Options, value: Any, *, width: str = "260px") -> widgets.Dropdown:
    """A labelled drop-down of (label, value) options; ``value`` must be one of them (else the first)."""
    values = [option[1] for option in options]
    chosen = value if value in values else (values[0] if values else None)
    return widgets.Dropdown(
        description=description,
        options=list(options),
        value=chosen,
        style={"description_width": "initial"},
        layout=widgets.Layout(width=width),
    )


def controls(*children: widgets.Widget) -> widgets.HBox:
    box = widgets.HBox(list(children))
    box.add_class("sd-controls")
    return box


def html_widget(value: str = "", *css_classes: str) -> widgets.HTML:
    widget = widgets.HTML(value)
    for name in css_classes:
        widget.add_class(name)
    return widget


def heading(text: str) -> widgets.HTML:
    return html_widget(f'<div class="sd-heading">{html.escape(text)}</div>')


def note_html(text: str | None) -> str:
    return f'<p class="sd-note">{html.escape(text)}</p>' if text else ""


class StatusLine:
    """One line under the controls: a spinner while working, a sentence for anything the user should know."""

    def __init__(self) -> None:
        self.widget = html_widget("", "sd-status")
        self.problem: str | None = None

    def show(self, text: str, kind: str = "info") -> None:
        for name in ("busy", "error", "denied", "info"):
            self.widget.remove_class(f"sd-status-{name}")
        self.widget.add_class(f"sd-status-{kind}")
        self.widget.value = html.escape(text)

    def clear(self) -> None:
        self.problem = None
        self.show("", "info")

    @contextmanager
    def working(self, text: str) -> Iterator[None]:
        """Show ``text`` with a spinner; afterwards clear it, or say in plain words what went wrong."""
        self.problem = None
        self.show(text, "busy")
        try:
            yield
        except AccessDeniedError as exc:
            self._fail(str(exc), "denied")
        except InsufficientDataError as exc:
            self._fail(str(exc), "info")
        except ReportError as exc:
            log.warning("dashboard update failed: %s", exc)
            self._fail(str(exc), "error")
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("dashboard update failed (reference %s)", reference)
            self._fail(f"Something went wrong while updating this view (reference {reference}). Try again.", "error")
        else:
            self.show("", "info")

    def _fail(self, text: str, kind: str) -> None:
        self.problem = text
        self.show(text, kind)


def safely(status: StatusLine, text: str, update: Callable[[], None]) -> Callable[[Any], None]:
    """A widget observer that runs ``update`` under ``status.working(text)`` (the change itself is not needed)."""

    def observer(_change: Any = None) -> None:
        with status.working(text):
            update()

    return observer


def kpi_tiles_html(kpis: pd.DataFrame, *, currency: str, comparison: str, only: Sequence[str] = ()) -> str:
    """The KPI tiles of the reports' header (``report_lib.render.brand.kpi_tiles``) as dashboard HTML."""
    rows = kpis[kpis["kpi"].isin(only)] if only else kpis
    tiles = kpi_tiles(rows.to_dict(orient="records"), currency=currency or None, comparison=comparison)
    parts = []
    for tile, kpi in zip(tiles, rows["kpi"], strict=True):
        approx = f' <span class="sd-approx">{html.escape(tile["approximate"])}</span>' if tile["approximate"] else ""
        parts.append(
            f'<div class="sd-tile" data-kpi="{html.escape(str(kpi))}">'
            f'<div class="sd-tile-label">{html.escape(tile["label"])}</div>'
            f'<div class="sd-tile-value">{html.escape(tile["value"])}</div>'
            f'<div class="sd-tile-change tone-{tile["tone"]}">{html.escape(tile["change"])}{approx}</div></div>'
        )
    return f'<div class="sd-kpis">{"".join(parts)}</div>'


def table_html(frame: pd.DataFrame | Note, **formats: Any) -> str:
    """A table formatted as in the reports (``report_lib.display.table``), or the note that replaces it."""
    shown = table(frame, **formats)
    body = shown._repr_html_() if isinstance(shown, Note) else shown.to_html()
    return f'<div class="sd-table">{body}</div>'
