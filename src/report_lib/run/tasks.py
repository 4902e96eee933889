"""Celery tasks that run report jobs: one (store, notebook, period) per task. Beat's tasks are in scheduled_tasks.

Messages are JSON (jobs, options and results are encoded here) and carry no secret: a worker reads the warehouse
URL, output directory, parameters and SMTP settings from its own environment, and refuses a job planned for another
warehouse or an output directory it does not share.

Retries, two levels: ``run_job`` retries a failed notebook itself (exponential backoff with full jitter, every
attempt a ledger row), exactly as the local backend does. Celery retries the whole task, again with exponential
backoff and jitter, only when something outside the notebook failed (the warehouse or the output directory could
not be reached) — at most REPORT_CELERY_MAX_RETRIES times. A lost worker's task is delivered again by the broker.

Time limits: the soft limit stops a task cleanly (its kernel is stopped, the attempt is marked failed, a failed
result is returned, so a chord still publishes); the hard limit kills the worker process as a backstop and the
worker's main process marks the attempt failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery import Task, shared_task
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from report_lib.config import Settings, load_settings
from report_lib.errors import ConfigError
from report_lib.files import replace_atomic
from report_lib.params import NotebookParameters
from report_lib.periods import Period
from report_lib.run import ledger
from report_lib.run.celery_app import RUN_REPORT, CeleryTuning
from report_lib.run.execute import ExecutionOptions, JobResult, RetryPolicy, run_job
from report_lib.run.notebooks import NOTEBOOK_DIR, NotebookSpec
from report_lib.run.plan import Job
from report_lib.warehouse.engine import create_warehouse_engine, normalise_url

log = logging.getLogger(__name__)

RETRYABLE = (DBAPIError, OSError)  # the warehouse or a shared folder unreachable: worth a later try
TASK_RETRY = RetryPolicy(base_delay=10.0, max_delay=300.0)
ABANDONED = "abandoned: the worker running this attempt stopped (killed or lost); the task was delivered again"


# --- the wire format: JSON, no secrets -------------------------------------------------------------------------


def encode_job(job: Job) -> dict[str, Any]:
    notebook = job.notebook.path
    if notebook.is_relative_to(NOTEBOOK_DIR):  # the project's notebooks: wherever the worker's checkout is
        notebook = notebook.relative_to(NOTEBOOK_DIR)
    return {
        "store": job.store,
        "notebook": {**dataclasses.asdict(job.notebook), "path": str(notebook)},
        "period": {"start": job.period.start.isoformat(), "end": job.period.end.isoformat(), "label": job.period.label},
        "parameters": job.parameters.model_dump(mode="json"),
        "papermill_parameters": job.papermill_parameters,
        "output_dir": str(job.output_dir),
        "skip_reason": job.skip_reason,
    }


def decode_job(data: dict[str, Any]) -> Job:
    spec = data["notebook"]
    period = data["period"]
    parameters = NotebookParameters.model_validate(data["parameters"])
    # what papermill injects is rebuilt from the validated parameters: a message cannot inject other names or values
    injected = {
        name: value for name, value in parameters.for_papermill().items() if name in data["papermill_parameters"]
    }
    return Job(
        store=data["store"],
        notebook=NotebookSpec(**{**spec, "path": NOTEBOOK_DIR / spec["path"]}),  # an absolute path stays as is
        period=Period(dt.date.fromisoformat(period["start"]), dt.date.fromisoformat(period["end"]), period["label"]),
        parameters=parameters,
        papermill_parameters=injected,
        output_dir=Path(data["output_dir"]),
        skip_reason=data["skip_reason"],
    )


def encode_options(options: ExecutionOptions) -> dict[str, Any]:
    """The options without the database URL's password: only which warehouse it is travels, for a check."""
    values = dataclasses.asdict(options)
    values["database_url"] = warehouse_identity(options.database_url)
    return values


def decode_options(data: dict[str, Any], *, database_url: str) -> ExecutionOptions:
    """The submitter's options with this worker's own database URL; ConfigError when it names another warehouse."""
    ours, theirs = warehouse_identity(database_url), data["database_url"]
    if ours != theirs:
        raise ConfigError(
            f"This worker's warehouse is {ours} but the job was planned on {theirs}. Every worker must use the "
            "submitter's warehouse: set REPORT_DATABASE_URL to the same database on every machine."
        )
    retry = RetryPolicy(**data["retry"])
    return ExecutionOptions(**{**data, "database_url": database_url, "retry": retry, "formats": tuple(data["formats"])})


def warehouse_identity(url: str) -> str:
    """Which database a URL names (backend, database, a PostgreSQL search_path in ``options``), without host,
    user, password or connection options: machines may reach the same server by different names and settings."""
    parsed = make_url(normalise_url(url))
    options = parsed.query.get("options")
    return f"{parsed.get_backend_name()}:{parsed.database or ''}{f'?options={options}' if options else ''}"


def encode_result(result: JobResult) -> dict[str, Any]:
    return dataclasses.asdict(result)


def decode_result(data: dict[str, Any]) -> JobResult:
    return JobResult(**data)


def failed_result(job: Job, error: str, *, attempts: int = 0, seconds: float = 0.0) -> JobResult:
    return JobResult(job.key, job.store, job.notebook.name, "failed", attempts, seconds, {}, error)


# --- one report job ---------------------------------------------------------------------------------------------


@functools.cache
def worker_settings() -> Settings:
    """The worker's Settings, resolved once per process from its environment (and .env)."""
    return load_settings()


@functools.cache
def worker_tuning() -> CeleryTuning:
    return CeleryTuning.from_env()


class ReportTask(Task):  # type: ignore[misc]
    """Closes the ledger rows of a task that ended without finishing them (hard time limit, unexpected error).

    Celery calls ``on_failure`` in the worker's main process when the hard time limit killed the task's process.
    """

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        try:
            job, options = decode_job(args[0]), args[1]
            engine = create_warehouse_engine(worker_settings().absolute_database_url())
            try:
                _close_running(engine, job, options["batch"], f"{type(exc).__name__}: {exc} (task {task_id})")
            finally:
                engine.dispose()
        except Exception:  # a failure handler must not fail; the ledger row stays 'running' and is logged
            log.exception("could not mark task %s failed in the ledger", task_id)


@shared_task(name=RUN_REPORT, bind=True, base=ReportTask, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
def run_report(self: Task, job_data: dict[str, Any], options_data: dict[str, Any]) -> dict[str, Any]:
    """Execute one (store, notebook, period) with ``run_job``; always returns a result unless the process dies."""
    job = decode_job(job_data)
    settings = worker_settings()
    try:
        options = decode_options(options_data, database_url=settings.absolute_database_url())
        _require_shared_output(job, settings)
    except ConfigError as exc:
        log.error("%s refused: %s", job.key, exc)
        return encode_result(failed_result(job, f"ConfigError: {exc}"))
    started = time.perf_counter()
    try:
        with _soft_limit_escapes():
            abandoned = _close_abandoned(job, options)
            if abandoned:
                log.warning("%s: %d attempt(s) of a lost worker marked failed; running it again", job.key, abandoned)
            result = run_job(job, options)
    except _SoftLimitReached:
        return encode_result(_stopped(job, options, seconds=time.perf_counter() - started))
    except RETRYABLE as exc:
        tries = self.request.retries
        if tries < worker_tuning().max_retries:
            countdown = TASK_RETRY.delay(tries + 1)
            log.warning("%s: %s; task retried in %.0f s", job.key, exc, countdown)
            raise self.retry(exc=exc, countdown=countdown) from exc
        error = f"{type(exc).__name__}: {exc} (gave up after {tries + 1} task attempts)"
        return encode_result(failed_result(job, error, seconds=time.perf_counter() - started))
    return encode_result(result)


def _require_shared_output(job: Job, settings: Settings) -> None:
    root = settings.output_dir.resolve()
    if not job.output_dir.is_relative_to(root):
        raise ConfigError(
            f"The job writes to {job.output_dir}, outside this worker's REPORT_OUTPUT_DIR ({root}); the portal and "
            "the emails would not find the report. Mount the shared output directory at the same path on every "
            "machine and set REPORT_OUTPUT_DIR to it."
        )


def _close_abandoned(job: Job, options: ExecutionOptions) -> int:
    engine = create_warehouse_engine(options.database_url)
    try:
        return _close_running(engine, job, options.batch, ABANDONED)
    finally:
        engine.dispose()


def _close_running(engine: Any, job: Job, batch: str, error: str) -> int:
    return ledger.fail_running(
        engine, batch=batch, store=job.store, notebook=job.notebook.name, period=job.period.label, error=error
    )


class _SoftLimitReached(BaseException):
    """The soft time limit, raised past ``run_job``'s own ``except Exception`` so that it does not retry."""


@contextlib.contextmanager
def _soft_limit_escapes() -> Iterator[None]:
    """Inside, the soft-time-limit signal (SIGUSR1 in a prefork worker child) raises _SoftLimitReached."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGUSR1"):
        yield  # no signals here (a thread pool): the hard time limit remains
        return

    def _raise(signum: int, frame: Any) -> None:
        raise _SoftLimitReached

    previous = signal.signal(signal.SIGUSR1, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)


def _stopped(job: Job, options: ExecutionOptions, *, seconds: float) -> JobResult:
    """After the soft time limit: stop the kernel, keep the partial notebook, fail the attempt, return a result."""
    limit = worker_tuning().soft_time_limit
    error = f"TimeLimitExceeded: stopped by the task's soft time limit ({limit} s); raise REPORT_CELERY_SOFT_TIME_LIMIT"
    _stop_kernels()
    outputs = {}
    partial = job.output_dir / f".{job.notebook.name}.partial.ipynb"  # as run_job names it while papermill writes
    final = job.output_dir / f"{job.notebook.name}.ipynb"
    if partial.exists():
        replace_atomic(partial, final)
    if final.exists():
        outputs["ipynb"] = str(final)
    engine = create_warehouse_engine(options.database_url)
    try:
        _close_running(engine, job, options.batch, error)
        attempts = ledger.count_attempts(
            engine, batch=options.batch, store=job.store, notebook=job.notebook.name, period=job.period.label
        )
    finally:
        engine.dispose()
    log.error("%s: %s", job.key, error)
    return dataclasses.replace(failed_result(job, error, attempts=attempts, seconds=seconds), outputs=outputs)


def _stop_kernels(grace: float = 3.0) -> None:
    """Cancel papermill's interrupted coroutines (their cleanup shuts the kernel down), then end any kernel left.

    Only kernels: other children of the worker process (a persistent browser for PDFs) are left alone.
    """
    import psutil  # installed with IPython; loaded only on this rare path
    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=grace))
    kernels = [child for child in psutil.Process().children(recursive=True) if _is_kernel(child)]
    for kernel in kernels:
        with contextlib.suppress(psutil.NoSuchProcess):
            kernel.terminate()
    _, alive = psutil.wait_procs(kernels, timeout=grace)
    for kernel in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            kernel.kill()


def _is_kernel(process: Any) -> bool:
    import psutil

    try:
        return any("ipykernel" in part for part in process.cmdline())
    except psutil.Error:
        return False
