"""Helpers for the render tests: the fixture notebook, Chromium availability, PDF page pixels, an SMTP server."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PLOTLY_BLUE = (99, 110, 250)  # plotly's first trace colour, #636efa

KPIS: list[dict[str, Any]] = [
    {"kpi": "revenue", "label": "Revenue", "unit": "money", "value": 123456.7, "previous": 110000.0,
     "change": 13456.7, "change_pct": 12.233},
    {"kpi": "orders", "label": "Orders", "unit": "count", "value": 2345, "previous": 2400, "change": -55,
     "change_pct": -2.2917},
    {"kpi": "return_rate", "label": "Return rate", "unit": "percent", "value": 5.5, "previous": 4.1,
     "change": 1.4, "change_pct": 34.1},
    {"kpi": "customers", "label": "Customers", "unit": "count", "value": 812, "previous": None,
     "change": None, "change_pct": None},
]  # fmt: skip
INSIGHTS = ["Revenue rose 12.2 % on the previous week.", "The return rate is up 1.4 points."]
STORE_NAME = "Lyon <Part-Dieu> & Co"


def require_chromium() -> str:
    """The Chromium path, or skip (fail when REQUIRE_CHROMIUM=1, as in CI)."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    reason = f"{CHROMIUM} is absent (Debian's chromium package; make setup installs it)"
    if os.environ.get("REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"Chromium is required (REQUIRE_CHROMIUM=1) but {reason}")
    pytest.skip(f"{reason}; set REQUIRE_CHROMIUM=1 to make this a failure")


def fixture_notebook() -> nbformat.NotebookNode:
    """A small report notebook: records, two charts through the report renderer, one mimetype-only chart, tags."""
    cell = nbformat.v4.new_code_cell
    setup = (
        "# CODE-MARKER-setup\nimport sys\nimport plotly.graph_objects as go\n"
        "from report_lib.record import record, record_figure\nfrom report_lib.render import setup_notebook_plotting\n"
        "setup_notebook_plotting()"
    )
    records = (
        f"record('store', 'S01')\nrecord('store_name', {STORE_NAME!r})\nrecord('period_label', 'Week 10, 2024')\n"
        f"record('currency', 'EUR')\nrecord('comparison', 'previous')\n"
        f"record('kpis', {KPIS!r})\nrecord('insights', {INSIGHTS!r})"
    )
    trend = (
        "fig = go.Figure(go.Scatter(x=list(range(1, 29)), y=[100 + 3 * i + 12 * (i % 7) for i in range(28)]))\n"
        "fig.update_layout(title='Daily revenue')\nrecord_figure('trend', fig)\nfig.show()"
    )
    bars = (
        "bars = go.Figure(go.Bar(x=['Food', 'Home', 'Toys'], y=[3, 1, 2]))\n"
        "bars.update_layout(title='Revenue by category')\nrecord_figure('categories', bars)\nbars"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        cell(setup, metadata={"tags": ["remove-input"]}),
        cell(records),
        nbformat.v4.new_markdown_cell("## Trend\nDaily revenue over the period."),
        cell(trend),
        cell(bars),
        cell("go.Figure(go.Pie(labels=['a', 'b'], values=[1, 2])).show(renderer='plotly_mimetype')"),
        cell("print('VISIBLE-OUTPUT')\nprint('STDERR-NOISE', file=sys.stderr)"),
        cell("print('REMOVED-CELL-OUTPUT')", metadata={"tags": ["remove-cell"]}),
        cell("print('REMOVED-OUTPUT')", metadata={"tags": ["remove-output"]}),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    return nb


def pdf_pages(pdf_path: Path, *, dpi: int = 40) -> list[np.ndarray]:
    """Each PDF page as an RGB array (pdftoppm's PPM output: a small header, then raw bytes)."""
    prefix = pdf_path.with_suffix("")
    subprocess.run(["pdftoppm", "-r", str(dpi), str(pdf_path), str(prefix)], check=True, timeout=60)
    pages = []
    for ppm in sorted(pdf_path.parent.glob(f"{prefix.name}-*.ppm")):
        magic, size, _maxval, body = ppm.read_bytes().split(b"\n", 3)  # pdftoppm writes "P6\nW H\n255\n" + bytes
        assert magic == b"P6", f"{ppm} is not a binary PPM"
        width, height = (int(value) for value in size.split())
        pixels = np.frombuffer(body[: width * height * 3], dtype=np.uint8)
        pages.append(pixels.reshape(height, width, 3))
    return pages


def ink_fraction(page: np.ndarray) -> float:
    """The share of pixels that are not (near) white."""
    return float((page.min(axis=2) < 240).mean())


def colour_fraction(page: np.ndarray, rgb: tuple[int, int, int], *, tolerance: int = 30) -> float:
    return float((np.abs(page.astype(int) - np.array(rgb)).max(axis=2) <= tolerance).mean())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpSink:
    """What the test SMTP server received."""

    port: int
    envelopes: list[Any] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(*, user: str | None = None, password: str | None = None, **smtp_options: Any) -> Iterator[SmtpSink]:
    """A real aiosmtpd server on 127.0.0.1; with ``user``, AUTH LOGIN/PLAIN is required and checked."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    sink = SmtpSink(port=free_port())

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        login, secret = auth_data.login.decode(), auth_data.password.decode()
        sink.logins.append((login, secret))
        return AuthResult(success=(login, secret) == (user, password), handled=False)  # False: the server answers 535

    options: dict[str, Any] = dict(smtp_options)
    if user is not None:
        options.update(authenticator=authenticator, auth_required=True)
        options.setdefault("auth_require_tls", "tls_context" in options)
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, **options)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
