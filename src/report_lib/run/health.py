"""`runner.py health`: is everything a run needs reachable? One check per dependency, each with a reason."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from report_lib.config import Settings
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | failed | skipped
    detail: str
    seconds: float


def run_checks(settings: Settings) -> list[Check]:
    checks: list[tuple[str, Callable[[Settings], str | None]]] = [
        ("database", _database),
        ("kernel", _kernel),
        ("chromium", _chromium),
        ("smtp", _smtp),
        ("redis", _redis),
        ("celery workers", _celery_workers),
    ]
    return [_timed(name, check, settings) for name, check in checks]


def _timed(name: str, check: Callable[[Settings], str | None], settings: Settings) -> Check:
    started = time.perf_counter()
    try:
        detail = check(settings)
        status = "skipped" if detail is None else "ok"
        detail = detail or "not configured"
    except Exception as exc:  # a health check reports every failure rather than stopping at the first
        status, detail = "failed", f"{type(exc).__name__}: {exc}"
    return Check(name, status, detail, time.perf_counter() - started)


def _database(settings: Settings) -> str:
    engine = create_warehouse_engine(settings.absolute_database_url())
    try:
        version = ensure_schema(engine)
    finally:
        engine.dispose()
    return f"{engine.url.render_as_string(hide_password=True)} (schema v{version})"


def _kernel(settings: Settings) -> str:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", startup_timeout=60)
    try:
        reply = client.execute_interactive("import pandas, plotly; 6 * 7", timeout=60)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the kernel could not import the analysis stack: {reply['content']}")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return "python3 kernel starts and imports pandas and plotly"


def _chromium(settings: Settings) -> str:
    from report_lib.render.pdf import find_browser

    path = find_browser()
    if path is None:
        raise FileNotFoundError("no Chromium on PATH: PDFs cannot be printed (install Debian's chromium)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True)
    return f"{path}: {version.stdout.strip()}"


def _smtp(settings: Settings) -> str | None:
    if not settings.smtp_url:
        return None
    from report_lib.render.email import check_smtp

    detail: str = check_smtp(settings.smtp_url)
    return detail


def _redis(settings: Settings) -> str | None:
    if not settings.celery_broker_url:
        return None
    import redis

    client = redis.Redis.from_url(settings.celery_broker_url, socket_connect_timeout=5)
    client.ping()
    return "broker answers PING"


def _celery_workers(settings: Settings) -> str | None:
    if not settings.celery_broker_url:
        return None
    import redis

    from report_lib.run.celery_app import CeleryTuning, close_app, create_app, require_workers

    with redis.Redis.from_url(settings.celery_broker_url, socket_connect_timeout=2) as client:
        client.ping()  # fails in 2 s when the broker is down; Celery's broadcast would retry for longer
    tuning = CeleryTuning.from_env()
    app = create_app(settings, tuning)
    try:
        workers = require_workers(app, tuning.queue)
    finally:
        close_app(app)
    return f"{len(workers)} worker(s) answer on queue {tuning.queue!r}: {', '.join(workers)}"
