"""Faults on the celery backend, with real workers and a real Redis: two publishers at once, a worker killed in
the middle of a task, Redis restarted in the middle of a run, a task that hangs."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
from celery_fixtures import own_redis, require_redis, running_worker, settings_of, wait_for, worker_env, write_probe
from render_fixtures import smtp_server
from sqlalchemy import Engine, select

from report_lib.config import Settings
from report_lib.params import ParameterFiles, RegionSettings
from report_lib.run import ledger
from report_lib.run import publish as publish_module
from report_lib.run.celery_app import CeleryTuning
from report_lib.run.celery_backend import CeleryBackend
from report_lib.run.execute import ExecutionOptions, JobResult, RetryPolicy
from report_lib.run.notebooks import NOTEBOOKS, NotebookSpec
from report_lib.run.plan import Job, RunRequest, plan_jobs
from report_lib.run.publish import send_digests, store_outcomes
from report_lib.run.tasks import ABANDONED
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.loaders.daily import load_stores
from report_lib.warehouse.schema import email_deliveries, report_runs, stores

PERIOD = "2024-03-04:2024-03-10"
ENGINE = "nbclient"  # a plain kernel per notebook: the probe needs none of the warm engine's imports
REGIONAL = "regional.manager@example.com"
FILES = ParameterFiles(regions={"Unassigned": RegionSettings(managers=[REGIONAL])})


# --- two publishers at once (the chord callback and a rerun, say): each email is sent once --------------------


def _ok(job: Job) -> JobResult:
    return JobResult(job.key, job.store, job.notebook.name, "ok", 1, 1.0, {})


@pytest.mark.parametrize("earlier", [None, "failed"])
def test_two_publishers_at_once_send_each_email_once(
    warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, earlier: str | None
) -> None:
    with warehouse.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": ["S01"], "name": ["Main St"]}))
    probe = write_probe(tmp_path / "probe.ipynb")
    jobs = _plan(warehouse, probe, tmp_path / "reports", monkeypatch, "S01")
    key = f"digest:Unassigned:{jobs[0].period.label}"
    if earlier:  # an earlier send failed: both publishers retry it
        ledger.record_delivery(warehouse, key=key, kind="digest", recipients=[REGIONAL], status=earlier)
    outcomes = store_outcomes(jobs, [_ok(j) for j in jobs], engine=warehouse, files=FILES)
    # Hold every window open for the other publisher: between reading a status and claiming, and between the
    # claim and the send. A claim that is not atomic sends twice here.
    _pause_after(monkeypatch, ledger, "delivery_status")
    _pause_after(monkeypatch, publish_module, "deliver", before=True)
    lines: list[list[str]] = []
    with smtp_server() as sink:
        settings = Settings(smtp_url=f"smtp://127.0.0.1:{sink.port}", outbox_dir=tmp_path / "outbox")
        period = jobs[0].period.label
        _in_threads(2, lambda: lines.append(send_digests(outcomes, period=period, settings=settings, files=FILES,
                                                         engine=warehouse)))  # fmt: skip
        assert [envelope.rcpt_tos for envelope in sink.envelopes] == [[REGIONAL]]
    flat = [line for group in lines for line in group]
    assert len(flat) == 2
    assert sum(line.startswith(f"{key}: sent to {REGIONAL}") for line in flat) == 1, flat
    assert sum(line.startswith(f"{key}: already s") and "not sent again" in line for line in flat) == 1, flat
    with warehouse.connect() as conn:
        status = conn.execute(select(email_deliveries.c.status).where(email_deliveries.c.idempotency_key == key))
        assert status.scalar_one() == "sent"


def _pause_after(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, *, before: bool = False, seconds: float = 1.5
) -> None:
    """Make ``module.name`` wait (at most ``seconds``) for the other thread to reach the same point."""
    original = getattr(module, name)
    barrier = threading.Barrier(2, timeout=seconds)

    def paused(*args: Any, **kwargs: Any) -> Any:
        if before:
            _meet(barrier)
        value = original(*args, **kwargs)
        if not before:
            _meet(barrier)
        return value

    monkeypatch.setattr(module, name, paused)


def _meet(barrier: threading.Barrier) -> None:
    with contextlib.suppress(threading.BrokenBarrierError):  # the other never came: the claim stopped it
        barrier.wait()


def _in_threads(count: int, target: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def _plan(engine: Engine, probe: Path, output_dir: Path, monkeypatch: pytest.MonkeyPatch, codes: str) -> list[Job]:
    monkeypatch.setitem(NOTEBOOKS, "probe", NotebookSpec("probe", "Probe", probe))
    request = RunRequest(stores=codes, notebooks="probe", period=PERIOD)
    return plan_jobs(request, stores=load_stores(engine), files=FILES, output_dir=output_dir)


# --- real workers -------------------------------------------------------------------------------------------------


@dataclass
class FaultWorld:
    engine: Engine
    probe: Path
    folder: Path
    broker: str

    def env(self, **extra: object) -> dict[str, str]:
        """A worker environment on a queue of its own (one per test: nothing left over reaches another test)."""
        broker = str(extra.pop("broker", self.broker))
        return worker_env(
            broker=broker,
            database_url=self.engine.url.render_as_string(),
            output_dir=self.folder / "reports",
            queue=f"test-{uuid.uuid4().hex[:8]}",
            log_dir=self.folder / "logs",
            **extra,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultWorld]:
    broker = require_redis()
    folder = tmp_path_factory.mktemp("celery-faults")
    engine = create_warehouse_engine(f"sqlite:///{folder / 'warehouse.db'}")
    ensure_schema(engine)
    codes = ["SLOW1", "SLOW2", "SLOW3", "HANG"]
    with engine.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": codes, "name": codes}))
    yield FaultWorld(engine, write_probe(folder / "probe.ipynb"), folder, broker)
    engine.dispose()


@dataclass
class Submitted:
    """``CeleryBackend.execute`` running in a thread, as `runner.py run --backend celery` waits."""

    thread: threading.Thread
    results: list[JobResult]
    errors: list[BaseException]

    def wait(self, timeout: float, worker: Any = None) -> list[JobResult]:
        wait_for(lambda: not self.thread.is_alive(), timeout=timeout, what="the run", worker=worker)
        assert not self.errors, self.errors
        return self.results


def _submit(env: dict[str, str], jobs: list[Job], options: ExecutionOptions) -> Submitted:
    results: list[JobResult] = []
    errors: list[BaseException] = []
    backend = CeleryBackend(settings_of(env), CeleryTuning.from_env(env))

    def run() -> None:
        try:
            backend.execute(jobs, options, workers=1, on_result=results.append)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return Submitted(thread, results, errors)


def _options(env: dict[str, str], batch: str, *, timeout: int = 600, retries: int = 2) -> ExecutionOptions:
    retry = RetryPolicy(retries=retries, base_delay=0.01)
    return ExecutionOptions(
        env["REPORT_DATABASE_URL"], batch, formats=(), retry=retry, execution_timeout=timeout, engine=ENGINE
    )


def _rows(engine: Engine, batch: str) -> list[tuple[str, int, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(report_runs.c.store_code, report_runs.c.attempt, report_runs.c.status, report_runs.c.error)
            .where(report_runs.c.batch == batch)
            .order_by(report_runs.c.run_id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _pool_processes(worker_pid: int) -> list[psutil.Process]:
    """The worker's pool processes (its kernels are their children)."""
    return psutil.Process(worker_pid).children()


def _kernels(worker_pid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.Process(worker_pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if "ipykernel_launcher" in " ".join(process.cmdline()):
                found.append(process)
    return found


def test_a_killed_worker_task_is_delivered_again_and_completes_once(
    world: FaultWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed twice: its pool process (the worker rejects the task back to the queue at once), then the whole
    worker, as when its machine dies (Redis hands the unacknowledged task to another worker after the visibility
    timeout). The task completes once, the ledger closes the lost attempts, the digest goes out once."""
    env = world.env(
        REPORT_CELERY_SOFT_TIME_LIMIT=300,
        REPORT_CELERY_VISIBILITY_TIMEOUT=20,  # short for the test; production keeps it above the hard limit
        REPORT_CELERY_RESTORE_INTERVAL=1,
        REPORT_TEST_SLOW_SECONDS=2,
    )
    jobs = _plan(world.engine, world.probe, world.folder / "reports", monkeypatch, "SLOW1")
    batch = f"kill-{uuid.uuid4().hex[:6]}"
    logs = world.folder / "logs"
    with running_worker(env, logs, name="doomed") as doomed:
        submitted = _submit(env, jobs, _options(env, batch))
        wait_for(lambda: _rows(world.engine, batch), timeout=120, what="the first attempt", worker=doomed)
        [pool] = _pool_processes(doomed.pid)
        os.kill(pool.pid, signal.SIGKILL)
        wait_for(lambda: len(_rows(world.engine, batch)) == 2, timeout=120, what="a second delivery", worker=doomed)
        doomed.kill()
    with running_worker(env, logs, name="rescuer") as rescuer:
        [result] = submitted.wait(timeout=180, worker=rescuer)
    assert (result.status, result.attempts, result.error) == ("ok", 1, None)
    assert _rows(world.engine, batch) == [
        ("SLOW1", 1, "failed", ABANDONED),  # closed by the second delivery
        ("SLOW1", 1, "failed", ABANDONED),  # closed by the rescuer
        ("SLOW1", 1, "ok", None),
    ]
    assert not list((world.folder / "reports").rglob("*.partial.ipynb"))

    outcomes = store_outcomes(jobs, [result], engine=world.engine, files=FILES)
    with smtp_server() as sink:
        settings = Settings(smtp_url=f"smtp://127.0.0.1:{sink.port}", outbox_dir=world.folder / "outbox")
        period = jobs[0].period.label
        first = send_digests(outcomes, period=period, settings=settings, files=FILES, engine=world.engine)
        again = send_digests(outcomes, period=period, settings=settings, files=FILES, engine=world.engine)
        assert len(sink.envelopes) == 1
    assert first[0].startswith(f"digest:Unassigned:{period}: sent") and "not sent again" in again[0]
    assert "SLOW1" in sink.envelopes[0].content.decode()


def test_a_hanging_notebook_is_stopped_by_its_time_limit(world: FaultWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """papermill's cell timeout stops a hanging cell; a task that outlives the soft time limit is stopped with its
    kernel, not retried, and marked failed in the ledger."""
    env = world.env(REPORT_CELERY_SOFT_TIME_LIMIT=20, REPORT_CELERY_HARD_TIME_LIMIT=50)
    jobs = _plan(world.engine, world.probe, world.folder / "reports", monkeypatch, "HANG")
    logs = world.folder / "logs"
    with running_worker(env, logs, name="hang") as worker:
        by_cell = f"cell-{uuid.uuid4().hex[:6]}"
        [result] = _submit(env, jobs, _options(env, by_cell, timeout=3, retries=0)).wait(120, worker)
        assert (result.status, result.attempts) == ("failed", 1)
        assert (result.error or "").startswith("CellTimeoutError: A cell timed out"), result.error
        assert _rows(world.engine, by_cell) == [("HANG", 1, "failed", result.error)]

        by_task = f"task-{uuid.uuid4().hex[:6]}"
        [result] = _submit(env, jobs, _options(env, by_task, timeout=600, retries=2)).wait(120, worker)
        assert (result.status, result.attempts) == ("failed", 1)  # stopped, not retried
        assert (result.error or "").startswith("TimeLimitExceeded: stopped by the task's soft time limit (20 s)")
        assert _rows(world.engine, by_task) == [("HANG", 1, "failed", result.error)]
        assert Path(result.outputs["ipynb"]).exists()  # the notebook as far as it ran, for the portal
        assert _kernels(worker.pid) == []  # its kernel was stopped with it
        assert len(_pool_processes(worker.pid)) == 1  # the worker goes on


def test_redis_restarted_mid_run_loses_nothing(
    world: FaultWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis without persistence restarts while reports are queued and running: the waiting side notices (a new
    server run id) and submits the unfinished reports again; every report ends with one result and no ledger row
    is left running."""
    jobs = _plan(world.engine, world.probe, world.folder / "reports", monkeypatch, "SLOW1,SLOW2,SLOW3")
    batch = f"restart-{uuid.uuid4().hex[:6]}"
    with own_redis(world.folder) as server:
        env = world.env(broker=server.url, REPORT_TEST_SLOW_SECONDS=1, REPORT_CELERY_BROKER_WAIT=120)
        with running_worker(env, world.folder / "logs", name="restart") as worker:
            submitted = _submit(env, jobs, _options(env, batch))
            wait_for(lambda: submitted.results, timeout=120, what="the first report", worker=worker)
            server.restart()
            results = submitted.wait(timeout=240, worker=worker)
    assert "Redis restarted" in caplog.text  # noticed, and the unfinished reports submitted again
    assert sorted(r.store for r in results) == ["SLOW1", "SLOW2", "SLOW3"]
    assert [r.status for r in results] == ["ok", "ok", "ok"], [r.error for r in results]
    rows = _rows(world.engine, batch)
    assert {store for store, _, status, _ in rows if status == "ok"} == {"SLOW1", "SLOW2", "SLOW3"}
    assert all(status != "running" for _, _, status, _ in rows)
