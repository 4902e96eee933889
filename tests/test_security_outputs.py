"""One full `runner.py run --send` as a user runs it, with hostile names in the warehouse and secrets configured;
then every artefact is attacked and searched.

The warehouse is a copy of the session's demo warehouse whose store name, region, product names and categories
carry HTML, script tags, newlines, quotes and SQL. Secrets: the SMTP password (the test's SMTP server requires it)
and a Redis broker password (configured, unused). Checked afterwards:

- escaping: in Chromium, no report page, portal page or e-mail body runs an injected script (no dialog, no flag
  set by a payload, no injected element), and the hostile names are shown as text;
- e-mail headers: the CR/LF in the store name injects no header;
- paths: every file written is under the output folder;
- secrets: none in the executed notebooks, HTML, PDF text (pdftotext), e-mails as sent, logs, console output and
  the ledger tables.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from render_fixtures import CHROMIUM_ARGS, require_chromium, smtp_server
from sqlalchemy import Engine, select, text

from report_lib.warehouse.engine import create_warehouse_engine
from report_lib.warehouse.schema import email_deliveries, report_runs, schedule_state

ROOT = Path(__file__).resolve().parent.parent
SMTP_SECRET = "smtp-S3cr3t-p4ss"
BROKER_SECRET = "redis-Br0ker-t0ken"
SECRETS = (SMTP_SECRET, BROKER_SECRET)
PAYLOAD = "<script>window.__pwned='{0}';alert('{0}')</script>"
IMG = "<img src=x onerror=\"window.__pwned='{0}';alert('{0}')\" id=injected-{0}>"
STORE_NAME = f'O\'Brien & "Sons" </title>{PAYLOAD.format("store")}{IMG.format("store")}\r\nBcc: victim@example.com'
REGION = f"North{IMG.format('region')}"
NOTEBOOKS = "store_overview,recommendations"


@dataclass
class Run:
    folder: Path
    returncode: int
    console: str
    messages: list[EmailMessage]
    raw_messages: list[bytes]
    database: str


def _copy_sqlite(source: str, target: Path) -> str:
    """A consistent copy of a SQLite warehouse (WAL included), through SQLite's backup API."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return f"sqlite:///{target}"


def _make_hostile(url: str) -> None:
    """Hostile names in store S01 and every product; the copy starts with no runs or e-mails of other tests."""
    engine = create_warehouse_engine(url)
    with engine.begin() as conn:
        for table in (report_runs, email_deliveries, schedule_state):
            conn.execute(table.delete())
        conn.execute(
            text("UPDATE stores SET name = :name, region = :region, manager_emails = :managers WHERE code = 'S01'"),
            {"name": STORE_NAME, "region": REGION, "managers": json.dumps(["manager@example.com"])},
        )
        conn.execute(
            text("UPDATE products SET name = :prefix || name, category = :category || category"),
            {"prefix": PAYLOAD.format("product") + "'; DROP TABLE stores; -- ", "category": IMG.format("category")},
        )
    engine.dispose()


@pytest.fixture(scope="module")
def run(demo_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_chromium()
    folder = tmp_path_factory.mktemp("security-run")
    database = _copy_sqlite(str(demo_engine.url.database), folder / "warehouse.db")
    _make_hostile(database)
    parameters = folder / "parameters"
    parameters.mkdir()
    shutil.copy(ROOT / "parameters" / "defaults.yaml", parameters / "defaults.yaml")
    (parameters / "stores.yaml").write_text(
        json.dumps({"regions": {REGION: {"managers": ["regional@example.com"]}}}), encoding="utf-8"
    )
    with smtp_server(user="reports", password=SMTP_SECRET) as sink:
        env = {
            **os.environ,
            "REPORT_DATABASE_URL": database,
            "REPORT_OUTPUT_DIR": str(folder / "reports"),
            "REPORT_OUTBOX_DIR": str(folder / "outbox"),
            "REPORT_PARAMETERS_DIR": str(parameters),
            "REPORT_LOG_DIR": str(folder / "logs"),
            "REPORT_SMTP_URL": f"smtp://reports:{quote(SMTP_SECRET)}@127.0.0.1:{sink.port}",
            "REPORT_CELERY_BROKER_URL": f"redis://:{BROKER_SECRET}@127.0.0.1:1/0",
            "REPORT_LOG_LEVEL": "DEBUG",
            "COLUMNS": "200",
        }
        command = [sys.executable, str(ROOT / "runner.py"), "-v", "run", "--stores", "S01", "--notebooks", NOTEBOOKS]
        command += ["--formats", "html,pdf", "--send", "--workers", "1", "--retries", "0"]
        finished = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=900)
        raw = [bytes(envelope.content) for envelope in sink.envelopes]
    messages = [email.message_from_bytes(data, policy=email.policy.default) for data in raw]
    yield Run(folder, finished.returncode, finished.stdout + finished.stderr, messages, raw, database)  # type: ignore[arg-type]


def test_the_run_succeeds_and_sends_both_emails(run: Run) -> None:
    assert run.returncode == 0, run.console[-3000:]
    keys = sorted(str(message["X-Report-Key"]) for message in run.messages)
    assert len(keys) == 2 and keys[0].startswith("digest:") and keys[1].startswith("store-report:S01:")


def test_no_header_is_injected_by_a_store_name_with_a_line_break(run: Run) -> None:
    [store_mail] = [m for m in run.messages if str(m["X-Report-Key"]).startswith("store-report:")]
    assert "Bcc" not in store_mail and "bcc" not in {key.lower() for key in store_mail}
    subject = str(store_mail["Subject"])
    assert "\r" not in subject and "\n" not in subject and "Bcc: victim@example.com" in subject  # shown, as text
    for data in run.raw_messages:
        headers = data.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nBcc:" not in headers and b"\nBcc:" not in headers
    assert all(envelope_target == ["manager@example.com"] or "regional@example.com" in envelope_target
               for envelope_target in ([str(a) for a in m.get_all("To", [])] for m in run.messages))  # fmt: skip


def test_every_file_is_written_under_the_output_folders(run: Run) -> None:
    allowed = [run.folder / name for name in ("reports", "logs", "parameters", "outbox")]
    written = [p for p in run.folder.rglob("*") if p.is_file() and not p.name.startswith("warehouse.db")]
    assert written and all(any(p.is_relative_to(folder) for folder in allowed) for p in written)
    assert {p.name for p in (run.folder / "reports").rglob("*.html")} >= {"index.html", "store_overview.html"}


def _open(browser: Any, url: str) -> tuple[list[str], Any, str, int]:
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url, wait_until="load", timeout=120_000)
    page.wait_for_timeout(300)
    pwned = page.evaluate("() => window.__pwned")
    injected = page.evaluate("() => document.querySelectorAll('[id^=injected]').length")
    body = page.inner_text("body")
    page.close()
    return dialogs, pwned, body, injected


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _pages(run: Run) -> dict[str, str]:
    """Every HTML page of the run, as file URLs: reports, the portal, and each e-mail's HTML body."""
    pages = {p.relative_to(run.folder).as_posix(): p.as_uri() for p in (run.folder / "reports").rglob("*.html")}
    for index, message in enumerate(run.messages):
        body = message.get_body(("html",))
        assert body is not None
        path = run.folder / f"email-{index}.html"
        path.write_text(body.get_content(), encoding="utf-8")
        pages[f"email {message['X-Report-Key']}"] = path.as_uri()
    return pages


def test_no_injected_script_runs_in_any_page_and_the_names_show_as_text(run: Run, browser: Any) -> None:
    pages = _pages(run)
    assert len(pages) == 5  # two reports, the portal, two e-mails
    for name, url in pages.items():
        dialogs, pwned, body, injected = _open(browser, url)
        assert (dialogs, pwned, injected) == ([], None, 0), name
        if "recommendations" in name:
            assert "<script>window.__pwned='product'" in body, name  # product names, shown as typed
        if not name.startswith("email digest"):
            assert 'O\'Brien & "Sons" </title><script>' in body, name


def test_no_secret_in_any_artefact(run: Run) -> None:
    texts: dict[str, str] = {"console": run.console}
    for path in run.folder.rglob("*"):
        if path.is_file() and path.suffix in {".ipynb", ".html", ".jsonl", ".eml", ".csv", ".txt", ".log", ""}:
            texts[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    pdfs = list((run.folder / "reports").rglob("*.pdf"))
    assert len(pdfs) == 2
    for pdf in pdfs:
        texts[str(pdf)] = subprocess.run(
            ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
    for index, data in enumerate(run.raw_messages):
        texts[f"email {index}"] = data.decode("utf-8", errors="replace")
    engine = create_warehouse_engine(run.database)
    with engine.connect() as conn:
        for table in (report_runs, email_deliveries):
            texts[table.name] = "\n".join(repr(tuple(row)) for row in conn.execute(select(table)))
    engine.dispose()
    assert len(texts[report_runs.name].splitlines()) == 2
    assert any("O&#x27;Brien" in t or "O'Brien" in t for t in texts.values())  # the scan reads real content
    leaks = [(where, secret) for where, content in texts.items() for secret in SECRETS if secret in content]
    leaks += [(where, "percent-encoded") for where, content in texts.items() if quote(SMTP_SECRET) in content]
    assert leaks == []
