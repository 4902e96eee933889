"""SMTP faults on real servers started by the test: a server that stalls (the timeout fires), one that stalls after
receiving the message, one that refuses a recipient. Reports are kept, sending is retried by the next run, and no
one gets a message twice.

The emails go through the publish step's public ``send_digests`` (the same claim-send-record path as the store
emails), with the delivery ledger on a real SQLite warehouse. A plain "server down" is covered in test_publish.py.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from render_fixtures import smtp_server
from sqlalchemy import Engine, select

from report_lib.config import Settings
from report_lib.params import ParameterFiles, RegionSettings
from report_lib.run.publish import StoreOutcome, send_digests
from report_lib.warehouse.schema import email_deliveries

PERIOD = "2024-W10"
KEY = f"digest:North:{PERIOD}"
MANAGERS = ["north@example.com", "deputy@example.com"]
OUTCOMES = [StoreOutcome("S01", "Main St", "North", ["boss@example.com"], {}, None, [])]
FILES = ParameterFiles(regions={"North": RegionSettings(managers=MANAGERS)})


def _send(engine: Engine, tmp_path: Any, smtp_url: str) -> list[str]:
    settings = Settings(smtp_url=smtp_url, outbox_dir=tmp_path / "outbox")
    return send_digests(OUTCOMES, period=PERIOD, settings=settings, files=FILES, engine=engine)


def _delivery(engine: Engine) -> tuple[str, list[str], int, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(
                email_deliveries.c.status,
                email_deliveries.c.recipients,
                email_deliveries.c.attempts,
                email_deliveries.c.last_error,
            ).where(email_deliveries.c.idempotency_key == KEY)
        ).one()
    return row.status, list(row.recipients), row.attempts, row.last_error


@contextmanager
def stalled_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word (no SMTP greeting): a hung mail server."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


class SlowAfterData:
    """Receives the whole message, then takes longer than the client waits before answering 250."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.received: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        self.received.append(envelope)
        await asyncio.sleep(self.seconds)
        return "250 Message accepted for delivery"


class RefusesOne:
    """Refuses RCPT TO for one address (550 mailbox unavailable), accepts the rest."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.envelopes: list[Any] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@contextmanager
def handler_server(handler: Any) -> Iterator[int]:
    from aiosmtpd.controller import Controller
    from render_fixtures import free_port

    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield int(controller.port)
    finally:
        controller.stop()


def test_a_stalled_server_times_out_and_the_send_is_retried_later(sqlite_warehouse: Engine, tmp_path: Any) -> None:
    with stalled_server() as port:
        started = time.monotonic()
        [line] = _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{port}?timeout=1")
        waited = time.monotonic() - started
    assert line.startswith(f"{KEY}: FAILED") and "timed out" in line
    assert waited < 20  # the 1 s timeout fired (slack for a loaded machine); without it this would hang
    assert _delivery(sqlite_warehouse)[0] == "failed"

    with smtp_server() as sink:
        [line] = _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{sink.port}?timeout=5")
        assert [sorted(envelope.rcpt_tos) for envelope in sink.envelopes] == [sorted(MANAGERS)]
    assert line.startswith(f"{KEY}: sent")
    with smtp_server() as sink:
        [line] = _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{sink.port}?timeout=5")
        assert sink.envelopes == []
    assert "not sent again" in line
    assert _delivery(sqlite_warehouse)[::2] == ("sent", 4)  # claimed+failed, claimed+sent


def test_a_server_that_stalls_after_taking_the_message_is_not_sent_to_again(
    sqlite_warehouse: Engine, tmp_path: Any
) -> None:
    """The client timed out waiting for the final 250, but the server had the message: a retry could duplicate it."""
    slow = SlowAfterData(seconds=3)
    with handler_server(slow) as port:
        [line] = _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{port}?timeout=1")
        time.sleep(3)  # the server finishes accepting it
    assert len(slow.received) == 1
    assert "unconfirmed" in line and "not be retried" in line
    status, _, _, error = _delivery(sqlite_warehouse)
    assert status == "unconfirmed" and error is not None and "timed out" in error

    with smtp_server() as sink:
        [line] = _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{sink.port}?timeout=5")
        assert sink.envelopes == []
    assert "not sent again" in line and "unconfirmed" in line


def test_a_refused_recipient_gets_it_later_and_the_others_only_once(sqlite_warehouse: Engine, tmp_path: Any) -> None:
    refusing = RefusesOne("deputy@example.com")
    with handler_server(refusing) as port:
        [line] = _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{port}?timeout=5")
    assert [envelope.rcpt_tos for envelope in refusing.envelopes] == [["north@example.com"]]
    assert "deputy@example.com" in line and "retried" in line
    status, recipients, _, error = _delivery(sqlite_warehouse)
    assert (status, recipients) == ("partial", ["deputy@example.com"])
    assert error is not None and "mailbox unavailable" in error

    with smtp_server() as sink:
        [line] = _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{sink.port}?timeout=5")
        assert [envelope.rcpt_tos for envelope in sink.envelopes] == [["deputy@example.com"]]
    assert line.startswith(f"{KEY}: sent")
    assert _delivery(sqlite_warehouse)[:2] == ("sent", MANAGERS)
    with smtp_server() as sink:
        _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{sink.port}?timeout=5")
        assert sink.envelopes == []


@pytest.mark.parametrize("refused", [["north@example.com", "deputy@example.com"]])
def test_every_recipient_refused_is_a_failure_retried_later(
    sqlite_warehouse: Engine, tmp_path: Any, refused: list[str]
) -> None:
    class RefusesAll(RefusesOne):
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            return "550 5.1.1 mailbox unavailable"

    with handler_server(RefusesAll(refused[0])) as port:
        [line] = _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{port}?timeout=5")
    assert line.startswith(f"{KEY}: FAILED")
    assert _delivery(sqlite_warehouse)[0] == "failed"
    with smtp_server() as sink:
        _send(sqlite_warehouse, tmp_path, f"smtp://127.0.0.1:{sink.port}?timeout=5")
        assert [sorted(envelope.rcpt_tos) for envelope in sink.envelopes] == [sorted(refused)]
