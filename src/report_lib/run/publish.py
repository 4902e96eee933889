"""After a run: the portal page of the period, and (with --send) one email per store and one digest per region.

Emails are idempotent: each has a key (``store-report:S01:2024-W10``, ``digest:North:2024-W10``) claimed in the
ledger before sending. A key already sent (or written to the outbox) is never sent again; a failed send stays
'failed' and is retried by the next run with --send; a claim left 'sending' by a crash is not retried automatically
(the message may have gone out) and is reported instead, as is an 'unconfirmed' send (the server stopped answering
after it had the whole message). A send the server accepted for some recipients only is 'partial': the next run
with --send sends it to the refused recipients alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import nbformat
from sqlalchemy import Engine

from report_lib.config import Settings
from report_lib.errors import BrowserNotFoundError, DeliveryError, ReportError
from report_lib.params import ParameterFiles
from report_lib.record import read_records
from report_lib.render.email import StoreSummary, build_digest_email, build_store_email, deliver
from report_lib.render.images import PngSession, record_figures
from report_lib.render.portal import PortalEntry, render_portal
from report_lib.run import ledger
from report_lib.run.execute import JobResult
from report_lib.run.plan import Job
from report_lib.warehouse.loaders.daily import load_stores

log = logging.getLogger(__name__)

OVERVIEW = "store_overview"
FINAL_STATUSES = {"sent", "written", "sending", "unconfirmed"}
PARTIAL = "partial"  # the server refused some recipients: the next run sends to them only


@dataclass(frozen=True)
class StoreOutcome:
    """One store's run, as emails see it: the overview's records and files, and any failure."""

    store: str
    name: str
    region: str
    managers: list[str]
    records: dict[str, Any]
    overview: JobResult | None
    failures: list[JobResult]


def publish(
    jobs: Sequence[Job],
    results: Sequence[JobResult],
    *,
    settings: Settings,
    files: ParameterFiles,
    engine: Engine,
    send: bool,
) -> tuple[str | None, list[str]]:
    """Write the portal; with ``send``, deliver the emails. Returns the portal path and one line per email."""
    if not jobs:
        return None, []
    portal = write_portal(jobs, results)
    if not send:
        return str(portal), []
    outcomes = store_outcomes(jobs, results, engine=engine, files=files)
    period = jobs[0].period.label
    lines = send_store_emails(outcomes, period=period, settings=settings, files=files, engine=engine, portal=portal)
    lines += send_digests(outcomes, period=period, settings=settings, files=files, engine=engine)
    return str(portal), lines


def write_portal(jobs: Sequence[Job], results: Sequence[JobResult]) -> Path:
    period_dir = jobs[0].output_dir.parent
    by_key = {result.key: result for result in results}
    entries = []
    for job in jobs:
        result = by_key.get(job.key)
        outputs = result.outputs if result else {}
        entries.append(
            PortalEntry(
                store=job.store,
                store_name=job.parameters.store_name,
                notebook=job.notebook.name,
                title=job.notebook.title,
                status=result.status if result else "not run",
                error=(result.error if result else None),
                duration=(result.seconds if result and result.status != "skipped" else None),
                **{fmt: os.path.relpath(path, period_dir) for fmt, path in outputs.items()},
            )
        )
    return render_portal(entries, period_label=jobs[0].period.label, out_path=period_dir / "index.html")


def store_outcomes(
    jobs: Sequence[Job], results: Sequence[JobResult], *, engine: Engine, files: ParameterFiles
) -> list[StoreOutcome]:
    stores = {row["code"]: row for row in load_stores(engine, sorted({j.store for j in jobs})).to_dict("records")}
    outcomes = []
    for code, store_results in _by_store(results):
        store = stores[code]
        overview = next((r for r in store_results if r.notebook == OVERVIEW and r.status == "ok"), None)
        overrides = files.stores.get(code)
        managers = overrides.managers if overrides and overrides.managers else list(store["manager_emails"] or [])
        outcomes.append(
            StoreOutcome(
                store=code,
                name=str(store["name"]),
                region=str(store["region"]),
                managers=[str(address) for address in managers],
                records=_overview_records(overview),
                overview=overview,
                failures=[r for r in store_results if r.status == "failed"],
            )
        )
    return outcomes


def send_store_emails(
    outcomes: Sequence[StoreOutcome],
    *,
    period: str,
    settings: Settings,
    files: ParameterFiles,
    engine: Engine,
    portal: Path,
) -> list[str]:
    lines = []
    with _png_session() as session:
        for outcome in outcomes:
            key = f"store-report:{outcome.store}:{period}"
            if outcome.overview is None:
                lines.append(f"{key}: not sent, the store overview did not run (see {portal})")
            elif not outcome.managers:
                lines.append(f"{key}: not sent, no manager address (set one in parameters/stores.yaml)")
            else:
                build = partial(
                    _store_email, outcome, key=key, sender=files.defaults.sender, settings=settings, session=session
                )  # called with recipients=...
                lines.append(_deliver_once(engine, key, "store", outcome.managers, settings, build))
    return lines


def send_digests(
    outcomes: Sequence[StoreOutcome], *, period: str, settings: Settings, files: ParameterFiles, engine: Engine
) -> list[str]:
    lines = []
    for region in sorted({outcome.region for outcome in outcomes}):
        settings_of_region = files.regions.get(region)
        if settings_of_region is None or not settings_of_region.managers:
            continue
        recipients = settings_of_region.managers
        key = f"digest:{region}:{period}"
        summaries = [_summary(outcome) for outcome in outcomes if outcome.region == region]
        build = partial(
            build_digest_email,
            summaries,
            sender=files.defaults.sender,
            period_label=period,
            idempotency_key=key,
        )
        lines.append(_deliver_once(engine, key, "digest", recipients, settings, build))
    return lines


def _store_email(
    outcome: StoreOutcome,
    *,
    recipients: list[str],
    key: str,
    sender: str,
    settings: Settings,
    session: PngSession | None,
) -> EmailMessage:
    assert outcome.overview is not None
    outputs = outcome.overview.outputs
    pdf = Path(outputs["pdf"]) if "pdf" in outputs and Path(outputs["pdf"]).exists() else None
    return build_store_email(
        outcome.records,
        recipients=recipients,
        sender=sender,
        pdf_path=pdf,
        html_link=_link(outputs.get("html"), settings),
        images=session.pngs(record_figures(outcome.records)) if session else None,
        idempotency_key=key,
    )


def _deliver_once(
    engine: Engine,
    key: str,
    kind: str,
    recipients: list[str],
    settings: Settings,
    build: Callable[..., EmailMessage],
) -> str:
    """Claim ``key``, build the message for whoever is still owed it and deliver it, record the outcome.

    Never sends a key twice: a key sent, written, being sent or 'unconfirmed' (the server stopped answering after it
    had the whole message) is skipped; a 'partial' one (some recipients refused) goes to the refused ones only.
    """
    previous = ledger.delivery_recipients(engine, key)
    owed = previous[1] if previous is not None and previous[0] == PARTIAL and previous[1] else recipients
    held = ledger.claim_delivery(engine, key=key, kind=kind, recipients=owed, unless=FINAL_STATUSES)
    if held is not None:
        note = (
            " (another publisher is sending it, or a crash interrupted an earlier send: check the mail log)"
            if held == "sending"
            else ""
        )
        return f"{key}: already {held}, not sent again{note}"
    try:
        result = deliver(build(recipients=owed), settings)
    except ReportError as exc:
        return _record_failure(engine, key, kind, owed, exc)
    if result.refused:
        ledger.record_delivery(
            engine, key=key, kind=kind, recipients=list(result.refused), status=PARTIAL, error=result.refusal
        )
        log.warning("%s: the server refused %s; kept for the next run with --send", key, result.refusal)
        return (
            f"{key}: sent to {', '.join(result.accepted)}; refused by the server: {result.refusal}; "
            "will be retried for them by the next run with --send"
        )
    ledger.record_delivery(
        engine, key=key, kind=kind, recipients=recipients, status=result.status, message_id=result.message_id
    )
    where = f" to {result.path}" if result.path else f" to {', '.join(result.recipients)}"
    return f"{key}: {result.status}{where}"


def _record_failure(engine: Engine, key: str, kind: str, owed: list[str], exc: ReportError) -> str:
    if isinstance(exc, DeliveryError) and exc.maybe_sent:
        ledger.record_delivery(engine, key=key, kind=kind, recipients=owed, status="unconfirmed", error=str(exc))
        log.error("%s: the server may have delivered it; not retried automatically: %s", key, exc)
        return (
            f"{key}: unconfirmed ({exc}); it will not be retried automatically (that could send it twice): check the "
            "mail server's log, and delete the key from email_deliveries to send it again"
        )
    ledger.record_delivery(engine, key=key, kind=kind, recipients=owed, status="failed", error=str(exc))
    log.warning("%s: delivery failed, kept for the next run with --send: %s", key, exc)
    return f"{key}: FAILED ({exc}); will be retried by the next run with --send"


def _summary(outcome: StoreOutcome) -> StoreSummary:
    kpis: list[dict[str, Any]] = outcome.records.get("kpis") or []
    revenue: dict[str, Any] = next((row for row in kpis if row.get("kpi") == "revenue"), {})
    failed = outcome.overview is None or bool(outcome.failures)
    errors = "; ".join(f"{r.notebook}: {r.error}" for r in outcome.failures) or None
    return StoreSummary(
        store=outcome.store,
        store_name=outcome.name,
        status="failed" if failed else "ok",
        revenue=revenue.get("value"),
        change_pct=revenue.get("change_pct"),
        error=errors if failed else None,
        currency=outcome.records.get("currency"),
    )


def _overview_records(overview: JobResult | None) -> dict[str, Any]:
    if overview is None:
        return {}
    notebook = nbformat.read(overview.outputs["ipynb"], as_version=4)  # type: ignore[no-untyped-call]
    return read_records(notebook)


def _by_store(results: Sequence[JobResult]) -> Iterator[tuple[str, list[JobResult]]]:
    stores: dict[str, list[JobResult]] = {}
    for result in results:
        stores.setdefault(result.store, []).append(result)
    yield from sorted(stores.items())


def _link(path: str | None, settings: Settings) -> str | None:
    """The report's URL under REPORT_PUBLIC_URL when set, else its path on this machine."""
    if path is None:
        return None
    if settings.public_url:
        relative = Path(path).resolve().relative_to(settings.output_dir.resolve())
        return f"{settings.public_url.rstrip('/')}/{relative.as_posix()}"
    return str(path)


@contextlib.contextmanager
def _png_session() -> Iterator[PngSession | None]:
    """One browser for every chart image of the run; without Chromium, emails go out without chart images."""
    try:
        with PngSession() as session:
            yield session
    except BrowserNotFoundError as exc:
        log.warning("emails without chart images: %s", exc)
        yield None
