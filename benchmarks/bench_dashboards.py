"""Dashboards in Chromium: time to interactive, widget change to updated chart, kernel memory, concurrent sessions.

The server is ``python -m report_lib.dashboards`` (what ``runner.py serve`` runs) on the demo warehouse (3 stores, 400
days, seed 1), signed in as an account that sees every store; the browser is Debian's Chromium driven by playwright.

- time to interactive: from navigation to the overview showing its KPI tiles and trend chart with nothing loading,
  each load a new page (and a new kernel: Voila starts one per page); the first load has a cold browser cache, the
  others a warm one (plotly's widget bundle and Voila's scripts cached), as for a returning user. A stall is a load
  over 20 s.
- widget change to updated chart: measured inside the page, from the drop-down's change event to the moment the
  chart and the tiles show the new selection with nothing loading; "first" = figures computed for that store and
  period for the first time in the session (SQL + analyses), "cached" = shown again from the session cache.
- memory: resident memory of each dashboard kernel once its page is interactive (psutil), and of the server.
- concurrent sessions: pages opened at once in one browser, each its own kernel; errors = pages not interactive
  within 180 s or showing an error.
--quick: 5 loads, 10 changes, 4 concurrent pages. Wall-clock times on a shared machine: the load average is recorded.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from argon2 import PasswordHasher

from report_lib.warehouse.demo import generate_demo
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.refresh import refresh_daily_metrics

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
STALL_S = 20.0
READY_JS = """() => !!document.querySelector('.sd-trend .js-plotly-plot .main-svg')
    && !!document.querySelector('.sd-tile[data-kpi=revenue]') && !document.querySelector('.sd-status-busy')"""
CHANGE_JS = """async ([label, index]) => {
    const select = [...document.querySelectorAll('select')].find(s => s.labels[0]?.textContent === label);
    const graph = () => document.querySelector('.sd-trend .js-plotly-plot');
    const state = () => JSON.stringify(Array.from(graph()._fullData[0].y).slice(-5))
        + document.querySelector('.sd-tile[data-kpi=revenue] .sd-tile-value').textContent;
    if (select.selectedIndex === index) return -2;
    const before = state();
    const start = performance.now();
    select.selectedIndex = index;
    select.dispatchEvent(new Event('change', {bubbles: true}));
    while (document.querySelector('.sd-status-busy') || state() === before) {
        if (performance.now() - start > 60000) return -1;
        await new Promise(r => requestAnimationFrame(r));
    }
    return performance.now() - start;
}"""


def _demo(folder: Path) -> str:
    url = f"sqlite:///{folder / 'warehouse.db'}"
    engine = create_warehouse_engine(url)
    ensure_schema(engine)
    generate_demo(engine, stores=3, days=400, seed=1, end=dt.date(2024, 6, 30))
    refresh_daily_metrics(engine)
    engine.dispose()
    return url


def _server(folder: Path, url: str) -> tuple[subprocess.Popen[bytes], int]:
    password = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("bench-password")
    (folder / "users.yaml").write_text(f'users:\n  bench:\n    password: "{password}"\n    stores: all\n')
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        **os.environ,
        "REPORT_DATABASE_URL": url,
        "REPORT_PARAMETERS_DIR": str(folder),
        "REPORT_LOG_LEVEL": "WARNING",
    }
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "report_lib.dashboards", "--port", str(port)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5)
            return process, port
        except OSError:
            time.sleep(0.25)
    process.kill()
    raise RuntimeError("the dashboards server did not start")


def _kernels(server: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return [p for p in psutil.Process(server.pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]


def _row(measure: str, values: list[float], unit: str, **extra: object) -> dict[str, object]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else float("nan")
    return {
        "measure": measure,
        "n": len(values),
        "median": statistics.median(values) if values else float("nan"),
        "p95": p95,
        "max": max(values) if values else float("nan"),
        "unit": unit,
        **extra,
    }


def _load(context: Any, url: str) -> tuple[Any, float]:
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function(READY_JS, timeout=180_000, polling=50)
    return page, time.perf_counter() - start


def _loads(context: Any, base: str, count: int, server: subprocess.Popen[bytes]) -> tuple[list[float], list[float]]:
    times, memory = [], []
    for _ in range(count):
        page, seconds = _load(context, base + "voila/render/overview.ipynb")
        times.append(seconds)
        memory.extend(p.memory_info().rss / 2**20 for p in _kernels(server))
        page.close(run_before_unload=True)
        time.sleep(1.0)  # the closed page's kernel shuts down
    return times, memory


def _changes(context: Any, base: str, count: int) -> tuple[list[float], list[float]]:
    """Alternate the store (options 4-6: S01-S03) and the period (options 1-3); figures are cached per pair."""
    page, _ = _load(context, base + "voila/render/overview.ipynb?period=last-28-days")
    first, cached = [], []
    state = {"Stores": 0, "Period": 1}  # all stores, last 28 days
    seen = {(0, 1)}
    plan = [("Stores", 4), ("Stores", 5), ("Period", 2), ("Stores", 6), ("Stores", 4), ("Period", 3), ("Stores", 5)]
    for step in range(count):
        label, index = plan[step % len(plan)]
        elapsed = page.evaluate(CHANGE_JS, [label, index])
        state[label] = index
        key = (state["Stores"], state["Period"])
        if elapsed >= 0:
            (cached if key in seen else first).append(elapsed)
        seen.add(key)
    page.close(run_before_unload=True)
    return first, cached


def _concurrent(context: Any, base: str, count: int) -> tuple[float, int]:
    pages = [context.new_page() for _ in range(count)]
    start = time.perf_counter()
    for page in pages:
        page.goto(base + "voila/render/overview.ipynb", wait_until="commit")
    errors = 0
    for page in pages:
        try:
            page.wait_for_function(READY_JS, timeout=180_000, polling=100)
            errors += page.locator(".sd-status-error, .sd-error").count() > 0
        except Exception:
            errors += 1
    elapsed = time.perf_counter() - start
    for page in pages:
        page.close(run_before_unload=True)
    return elapsed, errors


def run(quick: bool = False) -> list[dict[str, object]]:
    from playwright.sync_api import sync_playwright

    loads, changes, concurrent = (5, 10, 4) if quick else (30, 40, 10)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dashboards-") as tmp:
        folder = Path(tmp)
        server, port = _server(folder, _demo(folder))
        base = f"http://127.0.0.1:{port}/"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 1000})
                login = context.new_page()
                login.goto(base + "login")
                login.fill("#username", "bench")
                login.fill("#password", "bench-password")
                login.click("button[type=submit]")
                login.wait_for_url(base)
                times, memory = _loads(context, base, loads + 1, server)
                rows.append(_row("time to interactive, first load (cold cache)", times[:1], "s"))
                rows.append(_row("time to interactive, repeat loads", times[1:], "s",
                                 stalls=sum(t > STALL_S for t in times[1:])))  # fmt: skip
                first, cached = _changes(context, base, changes)
                rows.append(_row("widget change -> chart updated, first time", first, "ms"))
                rows.append(_row("widget change -> chart updated, cached", cached, "ms"))
                rows.append(_row("kernel memory per open dashboard", memory, "MB"))
                rows.append(_row("server memory", [psutil.Process(server.pid).memory_info().rss / 2**20], "MB"))
                elapsed, errors = _concurrent(context, base, concurrent)
                rows.append(
                    _row(f"{concurrent} sessions opened at once: all interactive", [elapsed], "s", errors=errors)
                )
                time.sleep(5)
                rows.append(_row("kernels left 5 s after every page closed", [len(_kernels(server))], "kernels"))
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    load = os.getloadavg()[0]
    for row in rows:
        row["load avg"] = round(load, 1)
    return rows


if __name__ == "__main__":
    from benchmarks.run import markdown_table

    print(markdown_table(run(quick="--quick" in sys.argv)))
