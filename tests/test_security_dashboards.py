"""What issue 8 asks of the dashboards server beyond tests/test_dashboards_server.py (which covers sign-in, refusals,
path traversal, the GHSA-2q59-h24c-w6fg /static/ read, kernel messages, other users' kernels and a page closed in
the browser): error answers that show no traceback or server path, and the kernel of a session abandoned without
ever connecting (a client that fetched the page and went away) shut down by the server on its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from test_dashboards_support import Server, open_page, request, sign_in, start_server, write_users

ROOT = Path(__file__).resolve().parent.parent
GRACE_S = 3
LEAKS = re.compile(rb"Traceback|File \"/|site-packages|/work/|\.py\", line|sqlalchemy|sqlite3|psycopg", re.IGNORECASE)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo_engine: Engine) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("dashboards-security")
    write_users(folder)
    running = start_server(folder, demo_engine.url.render_as_string(), "--disconnected-grace", str(GRACE_S))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def alice(server: Server) -> str:
    status, cookie = sign_in(server, "alice")
    assert status == 302
    return cookie


ERRORS = [
    ("GET", "/voila/render/no-such-dashboard.ipynb"),
    ("GET", "/voila/render/overview.ipynb%00.py"),
    ("GET", "/api/kernels/not-a-kernel-id"),
    ("GET", "/api/kernels/00000000-0000-0000-0000-000000000000/channels"),
    ("POST", "/api/kernels"),
    ("DELETE", "/api/sessions/x"),
    ("GET", "/voila/api/shutdown/%ff%fe"),
    ("GET", "/login?next=%0d%0aLocation:%20http://evil.example"),
]


@pytest.mark.parametrize(("method", "path"), ERRORS)
def test_error_answers_show_no_traceback_or_server_path(server: Server, alice: str, method: str, path: str) -> None:
    status, headers, body = request(server, method, path, cookie=alice, body="" if method == "POST" else None)
    assert status >= 300 or path.startswith("/login"), f"{path} answered {status}"
    assert not LEAKS.search(body), body[:400]
    assert "evil.example" not in headers.get("location", "") and "\r" not in "".join(headers.values())


def test_a_session_abandoned_before_connecting_loses_its_kernel(server: Server, alice: str) -> None:
    """The page was fetched (its kernel started and ran the cells) but no browser ever connected to it."""
    _, kernel_id = open_page(server, alice, "/voila/render/overview.ipynb")
    assert request(server, "GET", f"/api/kernels/{kernel_id}", cookie=alice)[0] == 200
    started = time.monotonic()
    while request(server, "GET", f"/api/kernels/{kernel_id}", cookie=alice)[0] == 200:
        assert time.monotonic() - started < 150, f"kernel {kernel_id} still running {GRACE_S} s grace + 2 min later"
        time.sleep(2)
    print(f"abandoned kernel shut down {time.monotonic() - started:.0f} s after the page was served")
