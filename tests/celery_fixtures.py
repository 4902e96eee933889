"""Helpers for the Celery tests: the test Redis, real worker processes (`runner.py worker`), a Redis of our own that
can be restarted, and a probe notebook whose behaviour depends on the store code."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from report_lib.config import Settings
from report_lib.run.celery_app import CeleryTuning, close_app, create_app, require_workers

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REPORT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
READY_TIMEOUT = 90.0  # a worker imports papermill, pandas and celery: slow on a loaded 2-core machine

PROBE_SOURCE = """\
import datetime as dt
import os
import time
from pathlib import Path
from report_lib.record import record
if store == "HANG":
    time.sleep(3600)
if store.startswith("SLOW"):
    time.sleep(float(os.environ.get("REPORT_TEST_SLOW_SECONDS", "3")))
flaky = os.environ.get("REPORT_TEST_FLAKY_DIR")
if store == "FLAKY" and flaky and not (Path(flaky) / "seen").exists():
    (Path(flaky) / "seen").touch()
    raise RuntimeError("transient failure, first attempt")
if store == "BAD":
    from report_lib.errors import DataValidationError
    raise DataValidationError("store BAD has no data")
record("store", store)
record("days", (dt.date.fromisoformat(period_end) - dt.date.fromisoformat(period_start)).days + 1)
record("threads", os.environ.get("OPENBLAS_NUM_THREADS"))
"""


def require_redis(url: str = REDIS_URL) -> str:
    """The test Redis URL, or skip (fail when REQUIRE_REDIS=1, as in CI)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # any failure means "no server here"
        reason = f"{url}: {type(exc).__name__}: {exc}"
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (REQUIRE_REDIS=1) but unavailable: {reason}")
        pytest.skip(f"Redis unavailable ({reason}); set REQUIRE_REDIS=1 to make this a failure")
    return url


def write_probe(path: Path) -> Path:
    """A notebook with the runner's parameters; HANG sleeps an hour, SLOW* a few seconds, BAD and FLAKY fail."""
    parameters = (
        'store = "S01"\nstore_name = "Store"\nperiod_start = "2024-01-01"\nperiod_end = "2024-01-07"\n'
        'period_label = "2024-W01"'
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(PROBE_SOURCE),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def worker_env(
    *, broker: str, database_url: str, output_dir: Path, queue: str, log_dir: Path, **extra: object
) -> dict[str, str]:
    """The environment of a worker (and of the submitting side): everything from REPORT_* variables."""
    env = {
        **os.environ,
        "REPORT_CELERY_BROKER_URL": broker,
        "REPORT_DATABASE_URL": database_url,
        "REPORT_OUTPUT_DIR": str(output_dir),
        "REPORT_LOG_DIR": str(log_dir),
        "REPORT_CELERY_QUEUE": queue,
    }
    env.update({key: str(value) for key, value in extra.items()})
    return env


def forget_queue(env: dict[str, str]) -> None:
    """Remove a test queue's list and bindings from the test Redis (results expire by themselves)."""
    import redis

    queue = env["REPORT_CELERY_QUEUE"]
    client = redis.Redis.from_url(env["REPORT_CELERY_BROKER_URL"], socket_connect_timeout=2)
    try:
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    except Exception:  # a Redis of a test that is gone by now
        pass
    finally:
        client.close()


def settings_of(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@dataclass
class Worker:
    """A `runner.py worker` process group; its output goes to ``log``."""

    process: subprocess.Popen[bytes]
    hostname: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as when its machine dies."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@contextmanager
def running_worker(env: dict[str, str], log_dir: Path, *, name: str, concurrency: int = 1) -> Iterator[Worker]:
    """Start `runner.py worker`, wait until it consumes its queue, and always stop it (and its group)."""
    hostname = f"{name}-{uuid.uuid4().hex[:6]}@localhost"
    log = log_dir / f"{hostname}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "runner.py"),
                "worker",
                f"--concurrency={concurrency}",
                f"--hostname={hostname}",
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process, hostname, log)
    try:
        wait_for(lambda: hostname in _consumers(env), timeout=READY_TIMEOUT, what=f"worker {hostname}", worker=worker)
        yield worker
    finally:
        _stop(process)
        forget_queue(env)


def _consumers(env: dict[str, str]) -> list[str]:
    tuning = CeleryTuning.from_env(env)
    app = create_app(settings_of(env), tuning)
    try:
        return require_workers(app, tuning.queue)
    except Exception:
        return []
    finally:
        close_app(app)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # warm shutdown
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
    process.wait(timeout=30)


def wait_for(
    condition: Callable[[], Any], *, timeout: float, what: str, worker: Worker | None = None, interval: float = 0.25
) -> Any:
    """Poll ``condition`` until it is truthy; fail (with the worker's log) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"{what}: the worker exited with {worker.process.returncode}:\n{worker.output()}")
        time.sleep(interval)
    detail = f"\n--- worker log ---\n{worker.output()}" if worker else ""
    pytest.fail(f"{what}: not done within {timeout:.0f} s{detail}")


@dataclass
class OwnRedis:
    """A redis-server of our own on a free port, without persistence, that a test may restart."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._answers, timeout=20, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # redis-server exits on SIGTERM; with --save "" nothing is kept
            self.process.wait(timeout=20)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except Exception:
            return False


@contextmanager
def own_redis(folder: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        reason = "redis-server is not on PATH (the restart test runs a Redis of its own)"
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required (REQUIRE_REDIS=1) but {reason}")
        pytest.skip(reason)
    from render_fixtures import free_port

    server = OwnRedis(free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
