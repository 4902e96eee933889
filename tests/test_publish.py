"""The whole run for one store, end to end: execute, render HTML and PDF, portal, email over real SMTP; then the
idempotency of emails (never twice), a failed send kept and retried, and the ledger of a forced failure."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from pathlib import Path

import pytest
from render_fixtures import free_port, require_chromium, smtp_server
from sqlalchemy import Engine, select, update

from report_lib.config import Settings
from report_lib.params import ParameterFiles
from report_lib.run.batch import BatchOptions, BatchResult, run_batch
from report_lib.run.plan import RunRequest
from report_lib.run.publish import publish
from report_lib.warehouse.schema import email_deliveries, stores

ROOT = Path(__file__).resolve().parent.parent
SECRET = "smtp-Pa55-word"


@pytest.fixture(scope="module")
def settings(demo_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    require_chromium()
    folder = tmp_path_factory.mktemp("publish")
    with demo_engine.begin() as conn:
        conn.execute(update(stores).where(stores.c.code == "S03").values(manager_emails=["boss.s03@example.com"]))
    return Settings(
        database_url=demo_engine.url.render_as_string(),
        output_dir=folder / "reports",
        outbox_dir=folder / "outbox",
        parameters_dir=ROOT / "parameters",
        log_dir=folder / "logs",
    )


@pytest.fixture(scope="module")
def first_run(settings: Settings) -> tuple[BatchResult, list[email.message.EmailMessage]]:
    with smtp_server(user="reports", password=SECRET) as sink:
        smtp = replace(settings, smtp_url=f"smtp://reports:{SECRET}@127.0.0.1:{sink.port}")
        request = RunRequest(stores="S03", notebooks="store_overview", period="last-week")
        result = run_batch(request, smtp, BatchOptions(workers=1, send=True, retries=0))
        messages = [email.message_from_bytes(e.content, policy=email.policy.default) for e in sink.envelopes]
    return result, messages  # type: ignore[return-value]


def test_report_files_and_portal(first_run: tuple[BatchResult, list[email.message.EmailMessage]]) -> None:
    result, _ = first_run
    [job] = result.results
    assert job.status == "ok", job.error
    assert {Path(p).suffix for p in job.outputs.values()} == {".ipynb", ".html", ".pdf"}
    assert Path(job.outputs["pdf"]).read_bytes().startswith(b"%PDF")
    portal = Path(result.portal or "").read_text()
    assert "S03/store_overview.html" in portal and "Store overview" in portal


def test_store_email_over_smtp(first_run: tuple[BatchResult, list[email.message.EmailMessage]]) -> None:
    result, messages = first_run
    store_mail = [m for m in messages if m["X-Report-Key"] == f"store-report:S03:{result.jobs[0].period.label}"]
    assert len(store_mail) == 1
    message = store_mail[0]
    assert message["To"] == "boss.s03@example.com"
    html = message.get_body(("html",)).get_content()
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert images and all(f"cid:{p['Content-ID'].strip('<>')}" in html for p in images)
    assert any(p.get_content_type() == "application/pdf" for p in message.walk())
    assert "Revenue" in message.get_body(("plain",)).get_content()
    assert SECRET not in message.as_string()


def test_digest_lists_the_store(first_run: tuple[BatchResult, list[email.message.EmailMessage]]) -> None:
    _, messages = first_run
    digests = [m for m in messages if str(m["X-Report-Key"]).startswith("digest:")]
    assert len(digests) == 1
    assert "S03" in digests[0].get_body(("plain",)).get_content()


def test_a_rerun_never_sends_twice_and_a_failed_send_is_retried(
    first_run: tuple[BatchResult, list[email.message.EmailMessage]], settings: Settings, demo_engine: Engine
) -> None:
    result, _ = first_run
    files = ParameterFiles.load(settings.parameters_dir)
    with smtp_server(user="reports", password=SECRET) as sink:
        smtp = replace(settings, smtp_url=f"smtp://reports:{SECRET}@127.0.0.1:{sink.port}")
        _, lines = publish(result.jobs, result.results, settings=smtp, files=files, engine=demo_engine, send=True)
        assert sink.envelopes == []
    assert all("not sent again" in line for line in lines)

    key = f"store-report:S03:{result.jobs[0].period.label}"
    with demo_engine.begin() as conn:  # forget the send, as for a new period, and make the server unreachable
        conn.execute(email_deliveries.delete().where(email_deliveries.c.idempotency_key == key))
    down = replace(settings, smtp_url=f"smtp://reports:{SECRET}@127.0.0.1:{free_port()}")
    _, lines = publish(result.jobs, result.results, settings=down, files=files, engine=demo_engine, send=True)
    assert any(line.startswith(f"{key}: FAILED") for line in lines)
    assert all(SECRET not in line for line in lines)
    assert Path(result.results[0].outputs["pdf"]).exists()  # the report is kept

    with smtp_server(user="reports", password=SECRET) as sink:
        smtp = replace(settings, smtp_url=f"smtp://reports:{SECRET}@127.0.0.1:{sink.port}")
        publish(result.jobs, result.results, settings=smtp, files=files, engine=demo_engine, send=True)
        assert [e.rcpt_tos for e in sink.envelopes] == [["boss.s03@example.com"]]
    with demo_engine.connect() as conn:
        status, attempts, error = conn.execute(
            select(email_deliveries.c.status, email_deliveries.c.attempts, email_deliveries.c.last_error).where(
                email_deliveries.c.idempotency_key == key
            )
        ).one()
    assert (status, error) == ("sent", None)
    assert attempts == 4  # claimed and failed, then claimed and sent
