"""The portal page ``reports/<period>/index.html``: every report of a period with its status, links and errors.

An offline, static page (no scripts); every value is escaped by Jinja2's autoescape, and links are kept only when
they are relative paths or http(s) URLs.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from report_lib.errors import ConfigError
from report_lib.files import write_atomic
from report_lib.render.brand import template_environment

log = logging.getLogger(__name__)

LINK_LABELS = (("html", "HTML"), ("pdf", "PDF"), ("ipynb", "notebook"))
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class PortalEntry:
    """One executed (or failed) notebook of one store; paths are relative to the portal page."""

    store: str
    notebook: str
    status: str  # ok | failed | anything else the runner records (running, skipped)
    store_name: str = ""
    html: str | None = None
    pdf: str | None = None
    ipynb: str | None = None
    error: str | None = None
    duration: float | None = None  # seconds
    title: str = ""  # shown instead of the notebook name when given


def _entry(value: PortalEntry | Mapping[str, Any]) -> PortalEntry:
    if isinstance(value, PortalEntry):
        return value
    known = {field.name for field in fields(PortalEntry)}
    try:
        return PortalEntry(**{key: value[key] for key in value if key in known})
    except TypeError as exc:
        raise ConfigError(
            f"A portal entry is missing fields ({exc}); expected at least store, notebook and status."
        ) from exc


def _href(path: str | None) -> str | None:
    """A safe href: relative paths (percent-encoded) and http(s) URLs; anything else (javascript:, file:) is dropped."""
    if not path:
        return None
    if path.startswith(("http://", "https://")):
        return path
    if _SCHEME.match(path) or path.startswith(("/", "\\")):
        return None
    return quote(path.replace("\\", "/"), safe="/._-~")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _rows(entries: list[PortalEntry]) -> list[dict[str, Any]]:
    ordered = sorted(entries, key=lambda entry: entry.store)  # stable: the runner's notebook order within a store
    rows, previous_store = [], None
    for entry in ordered:
        links = [{"href": href, "label": label} for attr, label in LINK_LABELS if (href := _href(getattr(entry, attr)))]
        status_class = entry.status if entry.status in ("ok", "failed") else "other"
        error = (entry.error or "").strip()
        rows.append(
            {
                **{name: getattr(entry, name) for name in ("store", "store_name", "notebook", "status")},
                "label": entry.title or entry.notebook,
                "status_class": status_class,
                "error": error[:MAX_ERROR_CHARS] + (" …" if len(error) > MAX_ERROR_CHARS else ""),
                "links": links,
                "duration": _duration(entry.duration),
                "first_of_store": entry.store != previous_store,
            }
        )
        previous_store = entry.store
    return rows


def portal_html(entries: Iterable[PortalEntry | Mapping[str, Any]], *, period_label: str) -> str:
    """The portal page as an HTML string."""
    rows = _rows([_entry(entry) for entry in entries])
    counts = {"ok": 0, "failed": 0, "other": 0}
    for row in rows:
        counts[row["status_class"]] += 1
    return (
        template_environment("portal")
        .get_template("index.html.j2")
        .render(
            period_label=period_label,
            rows=rows,
            counts=counts,
            store_count=len({row["store"] for row in rows}),
            generated=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        )
    )


def render_portal(entries: Iterable[PortalEntry | Mapping[str, Any]], *, period_label: str, out_path: Path) -> Path:
    """Write the portal page atomically to ``out_path`` (``reports/<period>/index.html``); returns the path."""
    html = portal_html(entries, period_label=period_label)
    write_atomic(out_path, html)
    log.info("wrote portal %s", out_path)
    return out_path
