"""Celery backend: throughput with 1 and 2 workers next to the local process pool on the same work, and the time
Celery adds to each task.

Two Celery worker nodes (`runner.py worker --concurrency 1` each, like two small machines) run on this machine
against Redis (REPORT_BENCH_REDIS_URL, default redis://127.0.0.1:6379/15): node A consumes queues one and two, node B
queue two, so a batch sent to queue one runs on one worker and a batch sent to queue two on both. The local backend
runs the same jobs with --workers 1 and 2. Configurations alternate, repeat `REPEATS` times, medians are reported.

Work: (a) `probe` — a small notebook (no heavy imports) per store with papermill's plain engine, a new kernel per
notebook on both backends, so the difference is what the backend costs; (b) `reports` — real notebooks
(store_overview, kpis, trends, anomalies) on a small demo warehouse (2 stores x 200 days), rendered to HTML, with
the default warm engine: local pools are new processes per run (kernels warmed per run), Celery workers stay up
(kernels stay warm between runs, after one untimed warm-up batch), which is what each deployment does.

`overhead_s` (one worker, jobs one after another) is the batch's wall time per job minus the time the tasks
themselves measured, per run, median: for Celery submission, queueing, the worker's ledger check and the result's
way back; for the local pool, starting its processes. `overhead_pct` is that overhead relative to the task's own
time: on `reports` the share of a real report's time (target <= 5 %). That includes what a batch pays once (for
Celery: finding a worker, noticing the last result; for the pool: starting its processes) spread over only 8 jobs;
From the ledger of the one-worker runs: `lead_s`, from submitting to the first job's start (Celery: finding a
worker, sending; the pool: starting its processes); `gap_s`, what each further task costs: the median time between
one job's end and the next one's start (result stored, message acknowledged, next one fetched and checked);
`tail_s`, from the last job's end to the batch's return (noticing the result; the pool: stopping); `gap_pct`, the gap
relative to the task's own time.
`quick=True`: probe only, one repeat. Run: `python -m benchmarks.bench_celery [--quick]`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from report_lib.config import Settings
from report_lib.params import ParameterFiles
from report_lib.run import ledger
from report_lib.run.backends import LocalBackend
from report_lib.run.celery_app import CeleryTuning, close_app, create_app, require_workers
from report_lib.run.celery_backend import CeleryBackend
from report_lib.run.execute import ExecutionOptions, JobResult, RetryPolicy
from report_lib.run.notebooks import NOTEBOOKS, NotebookSpec, select_notebooks
from report_lib.run.plan import Job, RunRequest, plan_jobs
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.loaders.daily import load_stores
from report_lib.warehouse.schema import stores

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("REPORT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
REPEATS = 3
PROBE_JOBS = 8
REPORT_NOTEBOOKS = "store_overview,kpis,trends,anomalies"
Row = dict[str, object]


def run(quick: bool = False) -> list[Row]:
    repeats = 1 if quick else REPEATS
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as tmp:
        folder = Path(tmp)
        rows = _bench("probe", *_probe_work(folder, 4 if quick else PROBE_JOBS), folder, repeats, engine="nbclient")
        if not quick:
            rows += _bench("reports", *_report_work(folder), folder, repeats, engine="warm", formats=("html",))
    return rows


def _probe_work(folder: Path, count: int) -> tuple[str, list[Job]]:
    url = f"sqlite:///{folder / 'probe.db'}"
    engine = create_warehouse_engine(url)
    ensure_schema(engine)
    codes = [f"B{number:02d}" for number in range(1, count + 1)]
    with engine.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": codes, "name": codes}))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell('store = "S01"\nperiod_label = "x"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("from report_lib.record import record\nrecord('store', store)"),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "probe.ipynb")
    NOTEBOOKS["bench_probe"] = NotebookSpec("bench_probe", "Probe", folder / "probe.ipynb")
    try:
        request = RunRequest(stores="all", notebooks="bench_probe", period="2024-03-04:2024-03-10")
        jobs = plan_jobs(request, stores=load_stores(engine), files=ParameterFiles(), output_dir=folder / "reports")
    finally:
        del NOTEBOOKS["bench_probe"]
        engine.dispose()
    return url, jobs


def _report_work(folder: Path) -> tuple[str, list[Job]]:
    from report_lib.warehouse.demo import generate_demo
    from report_lib.warehouse.loaders.daily import stores_with_order_lines
    from report_lib.warehouse.refresh import refresh_daily_metrics

    url = f"sqlite:///{folder / 'demo.db'}"
    engine = create_warehouse_engine(url)
    ensure_schema(engine)
    generate_demo(engine, stores=2, days=200, seed=3)
    refresh_daily_metrics(engine)
    select_notebooks(REPORT_NOTEBOOKS)  # fails early on a renamed notebook
    request = RunRequest(stores="all", notebooks=REPORT_NOTEBOOKS, period="last-week")
    files = ParameterFiles.load(ROOT / "parameters")
    jobs = plan_jobs(
        request,
        stores=load_stores(engine),
        files=files,
        output_dir=folder / "reports",
        with_order_lines=stores_with_order_lines(engine),
    )
    engine.dispose()
    return url, [job for job in jobs if job.skip_reason is None]


def _bench(
    work: str, url: str, jobs: list[Job], folder: Path, repeats: int, *, engine: str, formats: tuple[str, ...] = ()
) -> list[Row]:
    queues = {1: f"bench-one-{uuid.uuid4().hex[:6]}", 2: f"bench-two-{uuid.uuid4().hex[:6]}"}
    env = {
        **os.environ,
        "REPORT_CELERY_BROKER_URL": REDIS_URL,
        "REPORT_DATABASE_URL": url,
        "REPORT_OUTPUT_DIR": str(folder / "reports"),
        "REPORT_LOG_DIR": str(folder / "logs"),
    }
    timings: dict[tuple[str, int], list[tuple[float, list[JobResult]]]] = {}
    ends: dict[str, list[tuple[float, float, float]]] = {}
    with _forgotten(queues.values()), _worker(env, f"{queues[1]},{queues[2]}", "a"), _worker(env, queues[2], "b"):
        _execute("celery", 2, jobs, _options(url, f"bench-{work}-warm-up", engine, formats), env, queues[2])
        for repeat in range(repeats):
            for backend in ("local", "celery"):
                for workers in (1, 2):
                    options = _options(url, f"bench-{work}-{backend}{workers}-{repeat}", engine, formats)
                    started, wall_start = time.perf_counter(), dt.datetime.now()
                    results = _execute(backend, workers, jobs, options, env, queues[workers])
                    elapsed = time.perf_counter() - started
                    failed = [r.error for r in results if r.status != "ok"]
                    if failed:
                        raise RuntimeError(f"{work} on {backend} x{workers}: {len(failed)} failed: {failed[0]}")
                    timings.setdefault((backend, workers), []).append((elapsed, results))
                    if workers == 1:
                        ends.setdefault(backend, []).append(_ends(url, options.batch, wall_start, elapsed))
                    _progress(f"{work} {backend} x{workers} #{repeat + 1}: {elapsed:.1f} s")
    return _rows(work, len(jobs), timings, ends)


def _options(url: str, batch: str, engine: str, formats: tuple[str, ...]) -> ExecutionOptions:
    retry = RetryPolicy(retries=0)
    return ExecutionOptions(url, batch, formats=formats, retry=retry, execution_timeout=600, engine=engine)


def _execute(
    backend: str, workers: int, jobs: list[Job], options: ExecutionOptions, env: dict[str, str], queue: str
) -> list[JobResult]:
    if backend == "local":
        with _environ(env):  # the pool's processes read the warehouse URL from the environment, like workers
            return LocalBackend().execute(jobs, options, workers=workers, on_result=lambda result: None)
    tuning = CeleryTuning(queue=queue)
    celery = CeleryBackend(Settings.from_env(env), tuning)
    return celery.execute(jobs, options, workers=workers, on_result=lambda result: None)


def _ends(url: str, batch: str, wall_start: dt.datetime, elapsed: float) -> tuple[float, float, float]:
    """From the ledger of a one-worker batch: (seconds from submitting to the first job's start, median seconds
    between one job's end and the next one's start, seconds from the last job's end to the batch's return)."""
    engine = create_warehouse_engine(url)
    try:
        runs = ledger.recent_runs(engine, limit=1000)
    finally:
        engine.dispose()
    runs = runs[runs.batch == batch].sort_values("started_at")
    second = pd.Timedelta(seconds=1)
    gaps = (runs.started_at.iloc[1:].to_numpy() - runs.finished_at.iloc[:-1].to_numpy()) / second
    lead = (runs.started_at.iloc[0] - wall_start) / second
    tail = (wall_start + dt.timedelta(seconds=elapsed) - runs.finished_at.iloc[-1]) / second
    return float(lead), float(statistics.median(gaps)), float(tail)


def _rows(
    work: str,
    jobs: int,
    timings: dict[tuple[str, int], list[tuple[float, list[JobResult]]]],
    ends: dict[str, list[tuple[float, float, float]]],
) -> list[Row]:
    rows: list[Row] = []
    for (backend, workers), runs in sorted(timings.items()):
        wall = statistics.median(elapsed for elapsed, _ in runs)
        local = statistics.median(elapsed for elapsed, _ in timings[("local", workers)])
        task = statistics.median(statistics.fmean(r.seconds for r in results) for _, results in runs)
        row: Row = {"work": work, "backend": backend, "workers": workers, "jobs": jobs, "seconds": wall}
        row |= {"jobs_per_s": jobs / wall, "vs_local": wall / local, "task_s": task}
        if workers == 1:  # one job after another: wall time per job minus the job's own time, in each run
            own = [statistics.fmean(r.seconds for r in results) for _, results in runs]
            overheads = [elapsed / jobs - task for (elapsed, _), task in zip(runs, own, strict=True)]
            percents = [100 * extra / task for extra, task in zip(overheads, own, strict=True)]
            row |= {"overhead_s": statistics.median(overheads), "overhead_pct": statistics.median(percents)}
            lead, gap, tail = (statistics.median(values) for values in zip(*ends[backend], strict=True))
            row |= {"lead_s": lead, "gap_s": gap, "tail_s": tail, "gap_pct": 100 * gap / task}
        rows.append(row)
    return rows


@contextlib.contextmanager
def _worker(env: dict[str, str], queues: str, name: str) -> Iterator[None]:
    hostname = f"bench-{name}-{uuid.uuid4().hex[:6]}@localhost"
    log = Path(env["REPORT_LOG_DIR"]) / f"{hostname}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "runner.py"), "worker", "--concurrency=1", f"--queues={queues}"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, f"--hostname={hostname}"], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(env, queues.split(",")[0], hostname, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _wait_ready(env: dict[str, str], queue: str, hostname: str, process: Any, log: Path) -> None:
    app = create_app(Settings.from_env(env), CeleryTuning(queue=queue))
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker {hostname} exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(Exception):
                if hostname in require_workers(app, queue):
                    return
            time.sleep(0.5)
    finally:
        close_app(app)
    raise RuntimeError(f"worker {hostname} not ready within 120 s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def _forgotten(queues: Iterable[str]) -> Iterator[None]:
    """Remove the benchmark's queues and their bindings from Redis afterwards."""
    try:
        yield
    finally:
        import redis

        with redis.Redis.from_url(REDIS_URL) as client:
            for queue in queues:
                client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    from benchmarks.run import markdown_table

    print(markdown_table(run(quick="--quick" in sys.argv)))
