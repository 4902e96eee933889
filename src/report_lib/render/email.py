"""Emails: one per store manager (HTML with cid: charts, plain text, PDF attached) and a regional digest.

Bodies are readable without JavaScript and without ``data:`` images: KPI tiles are tables with inline CSS, charts
are PNG parts referenced by ``cid:`` (RFC 2392) inside multipart/related. Every value is escaped by Jinja2's
autoescape; header values lose their line breaks, so a store name cannot inject headers.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from report_lib.errors import ConfigError, RenderError
from report_lib.render.brand import (
    change_tone,
    comparison_label,
    format_change,
    format_value,
    kpi_tiles,
    template_environment,
    text_list,
)
from report_lib.render.delivery import check_smtp, deliver
from report_lib.render.images import EMAIL_CHART_WIDTH, record_figures

__all__ = ["StoreSummary", "build_digest_email", "build_store_email", "check_smtp", "deliver", "message_id_for"]

log = logging.getLogger(__name__)

DEFAULT_DOMAIN = "store-reports.invalid"
IDEMPOTENCY_HEADER = "X-Report-Key"
STATUSES = ("ok", "failed")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class StoreSummary:
    """One store's line in the regional digest."""

    store: str
    store_name: str
    status: str  # ok | failed
    revenue: float | None = None
    change_pct: float | None = None
    error: str | None = None
    currency: str | None = None
    html_link: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ConfigError(f"Store {self.store!r} has status {self.status!r}; expected one of {STATUSES}.")


def header_text(value: object) -> str:
    """A header-safe one-line version of ``value``: control characters (CR, LF...) become single spaces."""
    return _CONTROL.sub(" ", str(value)).strip()


def _addresses(values: Iterable[str], *, what: str) -> list[str]:
    formatted = []
    for value in [values] if isinstance(values, str) else values:
        name, spec = parseaddr(value)
        try:
            if _CONTROL.search(value) or "@" not in spec:
                raise ValueError("not an address")
            formatted.append(str(Address(display_name=header_text(name), addr_spec=spec)))
        except (ValueError, IndexError) as exc:  # headerregistry raises these on malformed addresses
            raise ConfigError(
                f"The {what} {value!r} is not an email address; expected name@domain or 'Name <name@domain>'. "
                "Fix the address in parameters/ (store managers) or REPORT settings (sender)."
            ) from exc
    if not formatted:
        raise ConfigError(f"No {what} given; expected at least one email address.")
    return formatted


def _domain(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2]
    return re.sub(r"[^A-Za-z0-9.-]", "", domain) or DEFAULT_DOMAIN


def message_id_for(idempotency_key: str, sender: str) -> str:
    """A deterministic Message-ID: the same key gives the same id, so a resend is recognisable."""
    readable = re.sub(r"[^A-Za-z0-9.-]+", "-", idempotency_key).strip("-.")[:60] or "report"
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:16]
    return f"<{readable}.{digest}@{_domain(sender)}>"


def _new_message(subject: str, *, recipients: Sequence[str], sender: str, key: str | None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = header_text(subject)
    message["From"] = _addresses([sender], what="sender")[0]
    message["To"] = ", ".join(_addresses(recipients, what="recipient"))
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id_for(key, sender) if key else make_msgid(domain=_domain(sender))
    if key:
        message[IDEMPOTENCY_HEADER] = header_text(key)
    return message


def _chart_parts(
    records: Mapping[str, Any], images: Mapping[str, bytes], message_id: str
) -> list[tuple[str, bytes, dict[str, Any]]]:
    """(content id without brackets, png, template values) for each image, in the order given."""
    figures = record_figures(records)
    id_base = message_id.strip("<>").partition("@")
    parts = []
    for index, (name, png) in enumerate(images.items(), start=1):
        cid = f"chart{index}.{id_base[0]}@{id_base[2]}"
        title = figures.get(name, {}).get("layout", {}).get("title", {})
        alt = title.get("text") if isinstance(title, Mapping) else None
        parts.append((cid, png, {"cid": cid, "alt": header_text(alt or name), "width": EMAIL_CHART_WIDTH}))
    return parts


def _link_fields(html_link: str | Path | None) -> dict[str, str]:
    link = str(html_link or "")
    if re.match(r"https?://", link):
        return {"link_url": link, "link_path": ""}
    return {"link_url": "", "link_path": link}


def build_store_email(
    records: Mapping[str, Any],
    *,
    recipients: Sequence[str],
    sender: str,
    pdf_path: Path | None = None,
    html_link: str | Path | None = None,
    images: Mapping[str, bytes] | None = None,
    idempotency_key: str | None = None,
    title: str = "Store performance report",
) -> EmailMessage:
    """The store manager's email from the overview notebook's records.

    Args:
        records: ``read_records(executed_notebook)``: store, store_name, period_label, currency, kpis, insights.
        images: PNG bytes by figure name (e.g. ``figure_pngs(record_figures(records))``), shown in this order.
        html_link: URL (made a link) or path (shown as text) of the interactive HTML report.
        idempotency_key: gives a deterministic Message-ID, e.g. ``store-report:S01:2024-W10``.
    """
    store, store_name = str(records.get("store") or ""), str(records.get("store_name") or "")
    period_label = str(records.get("period_label") or "")
    store_line = f"{store_name} ({store})" if store and store_name else store_name or store or "Store"
    subject = f"{store_line}: {title}" + (f", {period_label}" if period_label else "")
    message = _new_message(subject, recipients=recipients, sender=sender, key=idempotency_key)
    charts = _chart_parts(records, images or {}, str(message["Message-ID"]))
    currency = records.get("currency")
    comparison = str(records.get("comparison") or "previous")
    context = {
        "subject": header_text(subject),
        "title": title,
        "store_line": store_line,
        "bar_right": store_line,
        "period_label": period_label,
        "tiles": kpi_tiles(records.get("kpis"), currency=str(currency) if currency else None, comparison=comparison),
        "comparison": comparison_label(comparison),
        "insights": text_list(records.get("insights")),
        "charts": [chart for _, _, chart in charts],
        "has_pdf": pdf_path is not None,
        "width": EMAIL_CHART_WIDTH + 32,
        **_link_fields(html_link),
    }
    _set_bodies(message, "store", context)
    html_part = message.get_body(preferencelist=("html",))
    if html_part is None:  # set_bodies always adds one; keeps the type checker honest
        raise RenderError("The store email has no HTML part; expected one after rendering the templates.")
    for cid, png, _ in charts:
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", disposition="inline")
    if pdf_path is not None:
        _attach_pdf(message, pdf_path, filename=f"{_slug(store or store_name)}-{_slug(period_label)}.pdf")
    return message


def _set_bodies(message: EmailMessage, name: str, context: Mapping[str, Any]) -> None:
    env = template_environment("email")
    try:
        text = env.get_template(f"{name}.txt.j2").render(context)
        html = env.get_template(f"{name}.html.j2").render(context)
    except Exception as exc:  # jinja2 raises TemplateNotFound, UndefinedError, TemplateSyntaxError...
        raise RenderError(
            f"Could not render the {name} email templates: {type(exc).__name__}: {exc}. "
            "Expected templates/email/{name}.html.j2 and .txt.j2 beside src/; check the checkout."
        ) from exc
    message.set_content(text)
    message.add_alternative(html, subtype="html")


def _attach_pdf(message: EmailMessage, pdf_path: Path, *, filename: str) -> None:
    try:
        payload = pdf_path.read_bytes()
    except OSError as exc:
        raise RenderError(
            f"Cannot attach the PDF {pdf_path}: {exc}. Render the PDF first, or pass pdf_path=None."
        ) from exc
    message.add_attachment(payload, maintype="application", subtype="pdf", filename=filename)


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", value).strip("-").lower() or "report"


def _summary(value: StoreSummary | Mapping[str, Any]) -> StoreSummary:
    if isinstance(value, StoreSummary):
        return value
    try:
        return StoreSummary(**{key: value[key] for key in value if key in StoreSummary.__dataclass_fields__})
    except TypeError as exc:
        raise ConfigError(
            f"A digest summary is missing fields ({exc}); expected store, store_name and status (ok/failed)."
        ) from exc


def _digest_row(summary: StoreSummary) -> dict[str, Any]:
    change_row = {"kpi": "revenue", "unit": "money", "change_pct": summary.change_pct}
    return {
        "name": f"{summary.store_name} ({summary.store})" if summary.store_name else summary.store,
        "status": summary.status,
        "failed": summary.status == "failed",
        "error": summary.error,
        "revenue": format_value(summary.revenue, "money", currency=summary.currency),
        "change": format_change(change_row),
        "tone": change_tone(change_row),
        "link_url": summary.html_link if re.match(r"https?://", summary.html_link or "") else "",
    }


def build_digest_email(
    summaries: Iterable[StoreSummary | Mapping[str, Any]],
    *,
    recipients: Sequence[str],
    sender: str,
    period_label: str,
    idempotency_key: str | None = None,
) -> EmailMessage:
    """The regional managers' digest: every store's headline numbers, failures first and named in the subject."""
    rows = sorted((_digest_row(_summary(s)) for s in summaries), key=lambda row: (not row["failed"], row["name"]))
    failed = sum(row["failed"] for row in rows)
    subject = f"Store reports {period_label}: {len(rows) - failed} ok, {failed} failed"
    message = _new_message(subject, recipients=recipients, sender=sender, key=idempotency_key)
    context = {
        "subject": header_text(subject),
        "bar_right": period_label,
        "period_label": period_label,
        "rows": rows,
        "ok_count": len(rows) - failed,
        "failed_count": failed,
        "width": EMAIL_CHART_WIDTH + 32,
    }
    _set_bodies(message, "digest", context)
    return message
