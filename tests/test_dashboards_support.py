"""Helpers (no tests) for the dashboards server tests: a demo warehouse, the server process, sign-in, kernel messages.

One server per test session (``test_dashboards_server.py`` uses these through session-scoped fixtures): started as
``python -m report_lib.dashboards`` (the code path of ``runner.py serve``) on a free port, on a demo warehouse,
with three accounts whose argon2 hashes are cheap to check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from jupyter_server.services.kernels.connection.base import deserialize_binary_message
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from report_lib.warehouse.demo import generate_demo
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.refresh import refresh_daily_metrics

ROOT = Path(__file__).resolve().parent.parent
DEMO_END = dt.date(2024, 6, 30)  # a Sunday that ends a month: fixed, so periods and expected values are stable
USERS = {"alice": ["S01"], "bob": ["S02"], "boss": "all"}
PASSWORD = "{}-password"
START_TIMEOUT = 60.0


def build_demo_warehouse(folder: Path) -> str:
    """The demo warehouse (3 stores, 400 days to DEMO_END, seed 1) in ``folder``, built once per folder."""
    path = folder / "warehouse.db"
    done = folder / "warehouse.done"
    url = f"sqlite:///{path}"
    if not done.exists():
        engine = create_warehouse_engine(url)
        ensure_schema(engine)
        generate_demo(engine, stores=3, days=400, seed=1, end=DEMO_END)
        refresh_daily_metrics(engine)
        engine.dispose()
        done.touch()
    return url


def write_users(folder: Path) -> Path:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    lines = ["users:"]
    for name, stores in USERS.items():
        codes = "all" if stores == "all" else "[" + ", ".join(stores) + "]"
        lines += [f"  {name}:", f'    password: "{hasher.hash(PASSWORD.format(name))}"', f"    stores: {codes}"]
    path = folder / "users.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    https: bool = False

    @property
    def base(self) -> str:
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}/"

    def connection(self, timeout: float = 60) -> HTTPConnection:
        if self.https:  # the tests' own self-signed certificate
            return HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ssl._create_unverified_context())
        return HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_server(folder: Path, database_url: str, *extra: str) -> Server:
    """Start the dashboards server and wait (bounded) until its sign-in page answers."""
    port = free_port()
    log = folder / "server.log"
    env = {
        **os.environ,
        "REPORT_DATABASE_URL": database_url,
        "REPORT_PARAMETERS_DIR": str(folder),
        "REPORT_LOG_DIR": str(folder / "logs"),
        "REPORT_ENV": "test",
    }
    command = [sys.executable, "-m", "report_lib.dashboards", "--port", str(port), *extra]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port, log, https="--certfile" in extra)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dashboards server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if request(server, "GET", "/login")[0] == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"the dashboards server did not answer within {START_TIMEOUT} s:\n{server.log_tail()}")


def request(
    server: Server, method: str, path: str, *, cookie: str = "", body: str | None = None, timeout: float = 120
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request (the path is sent as given, without normalisation); status, headers, body."""
    connection = server.connection(timeout)
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def _cookies(headers: list[tuple[str, str]]) -> list[str]:
    return [value.split(";")[0] for key, value in headers if key.lower() == "set-cookie"]


def sign_in(server: Server, user: str, password: str | None = None) -> tuple[int, str]:
    """POST the login form as a browser would (with its XSRF token); the status and the session's cookie header."""
    status, cookies, _ = sign_in_headers(server, user, password)
    return status, "; ".join(value.split(";")[0] for value in cookies)


def sign_in_headers(server: Server, user: str, password: str | None = None) -> tuple[int, list[str], str]:
    """The sign-in's status, every Set-Cookie header (with their attributes) and the redirect."""
    connection = server.connection()
    connection.request("GET", "/login")
    response = connection.getresponse()
    page = response.read().decode()
    set_cookies = [value for key, value in response.getheaders() if key.lower() == "set-cookie"]
    cookies = _cookies(response.getheaders())
    match = re.search(r'name="_xsrf" value="([^"]+)"', page)
    assert match, "the login page has no XSRF token"
    form = urllib.parse.urlencode(
        {"username": user, "password": password or PASSWORD.format(user), "_xsrf": match.group(1)}
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "; ".join(cookies)}
    connection.request("POST", "/login?next=%2F", body=form, headers=headers)
    response = connection.getresponse()
    response.read()
    set_cookies += [value for key, value in response.getheaders() if key.lower() == "set-cookie"]
    connection.close()
    return response.status, set_cookies, response.getheader("Location") or ""


def open_page(server: Server, cookie: str, path: str) -> tuple[str, str]:
    """GET a dashboard page (its cells run in a new kernel); the HTML and that kernel's id."""
    status, _, body = request(server, "GET", path, cookie=cookie, timeout=180)
    html = body.decode()
    assert status == 200, f"{path}: HTTP {status}"
    match = re.search(r'<script id="jupyter-config-data" type="application/json">\s*(\{.*?\})\s*</script>', html, re.S)
    assert match, f"{path}: no kernel in the page"
    return html, str(json.loads(match.group(1))["kernelId"])


def _message(msg_type: str, content: dict[str, Any], channel: str = "shell") -> str:
    header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "test", "session": "s", "version": "5.3"}
    return json.dumps(
        {"header": header, "parent_header": {}, "metadata": {}, "content": content, "channel": channel, "buffers": []}
    )


async def _kernel_exchange(server: Server, cookie: str, kernel_id: str, sends: list[str]) -> list[dict[str, Any]]:
    """Send messages over the kernel websocket, then a kernel_info_request; every message received until it is done.

    The kernel handles shell messages in order and publishes on one ordered iopub channel, so everything the earlier
    messages caused has arrived once the kernel_info_request's reply and its "idle" status have.
    """
    url = f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    connection = await websocket_connect(HTTPRequest(url, headers={"Cookie": cookie}, connect_timeout=30))
    received: list[dict[str, Any]] = []
    last = _message("kernel_info_request", {})
    last_id = json.loads(last)["header"]["msg_id"]
    replied = idle = False
    try:
        for text in [*sends, last]:
            await connection.write_message(text)
        while not (replied and idle):
            raw = await asyncio.wait_for(connection.read_message(), timeout=60)
            assert raw is not None, "the kernel websocket closed"
            message = deserialize_binary_message(raw) if isinstance(raw, bytes) else json.loads(raw)
            received.append(message)
            ours = message.get("parent_header", {}).get("msg_id") == last_id
            replied = replied or (ours and message["header"]["msg_type"] == "kernel_info_reply")
            idle = idle or (ours and message["header"]["msg_type"] == "status" and
                            message["content"].get("execution_state") == "idle")  # fmt: skip
        return received
    finally:
        connection.close()


def kernel_exchange(server: Server, cookie: str, kernel_id: str, sends: list[str]) -> list[dict[str, Any]]:
    return asyncio.run(_kernel_exchange(server, cookie, kernel_id, sends))


def execute_request(code: str) -> str:
    return _message("execute_request", {"code": code, "silent": False, "store_history": False})


def widget_states(server: Server, cookie: str, kernel_id: str) -> str:
    """Every widget state the kernel holds, as JSON text: what a browser on that kernel could ever see."""
    info = kernel_exchange(
        server, cookie, kernel_id, [_message("comm_info_request", {"target_name": "jupyter.widget"})]
    )
    comms = next(m["content"]["comms"] for m in info if m["header"]["msg_type"] == "comm_info_reply")
    requests = [_message("comm_msg", {"comm_id": comm_id, "data": {"method": "request_state"}}) for comm_id in comms]
    replies = kernel_exchange(server, cookie, kernel_id, requests)
    states = [m["content"]["data"] for m in replies if m["header"]["msg_type"] == "comm_msg"]
    assert len(states) >= len(comms) > 0, "the kernel sent no widget states"
    return json.dumps(states)
