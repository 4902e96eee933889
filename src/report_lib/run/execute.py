"""Execute one job with papermill, with retries, recording every attempt in the ledger. Runs in a worker process."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError
from sqlalchemy.exc import SQLAlchemyError

from report_lib.errors import ReportNotFoundError
from report_lib.files import replace_atomic
from report_lib.run import engines as _engines  # noqa: F401  # registers "warm" even without the entry point
from report_lib.run import ledger
from report_lib.run.plan import Job
from report_lib.warehouse.engine import create_warehouse_engine

log = logging.getLogger(__name__)
T = TypeVar("T")
LEDGER_RETRY_PAUSES = (0.5, 1.0, 2.0, 3.0, 4.0)  # seconds between tries of a ledger write

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# Exceptions raised by notebook code that retrying cannot fix: bad data or bad parameters.
PERMANENT_ERRORS = {"DataValidationError", "InsufficientDataError", "NeedsOrderLinesError", "ConfigError"}
DEFAULT_ENGINE = "warm"


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    base_delay: float = 2.0
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, base·2^(attempt-1)], capped."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class ExecutionOptions:
    database_url: str
    batch: str
    formats: tuple[str, ...] = ("html", "pdf")
    execution_timeout: int = 600
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    kernel_name: str = "python3"
    engine: str = DEFAULT_ENGINE  # papermill engine: "warm" (report_lib.run.engines) or "nbclient" (a kernel each)


@dataclass(frozen=True)
class JobResult:
    key: str
    store: str
    notebook: str
    status: str  # ok | failed | skipped
    attempts: int
    seconds: float
    outputs: dict[str, str]
    error: str | None = None
    stages: dict[str, float] = field(default_factory=dict)  # seconds of the last attempt: execute, html, pdf


def skipped(job: Job) -> JobResult:
    """The result of a job not run because the store's data cannot feed the notebook."""
    return JobResult(job.key, job.store, job.notebook.name, "skipped", 0, 0.0, {}, job.skip_reason)


def pin_threads() -> None:
    """One BLAS/OpenMP thread per worker process (and its kernels): oversubscription made fits 10× slower."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"


def run_job(job: Job, options: ExecutionOptions) -> JobResult:
    """Execute ``job`` until it succeeds or its retries are spent; never raises for a notebook's own failure."""
    os.environ["REPORT_DATABASE_URL"] = options.database_url  # the kernel's StoreReport reads the same warehouse
    engine = create_warehouse_engine(options.database_url)
    started = time.perf_counter()
    error: str | None = None
    outputs: dict[str, str] = {}
    stages: dict[str, float] = {}
    attempt = 0
    try:
        for attempt in range(1, options.retry.retries + 2):
            record = _ledger_write(
                job,
                ledger.start_attempt,
                engine,
                batch=options.batch,
                store=job.store,
                notebook=job.notebook.name,
                period=job.period.label,
                parameters=job.papermill_parameters,
                attempt=attempt,
            )
            stages = {}
            error, permanent, outputs = _attempt(job, options, stages)
            if record is not None:
                status = "failed" if error else "ok"
                _ledger_write(job, ledger.finish_attempt, engine, record, status=status, error=error, outputs=outputs)
            if error is None or permanent or attempt > options.retry.retries:
                break
            delay = options.retry.delay(attempt)
            log.warning("%s failed (attempt %d), retrying in %.1f s: %s", job.key, attempt, delay, error)
            time.sleep(delay)
    finally:
        engine.dispose()
    return JobResult(
        key=job.key,
        store=job.store,
        notebook=job.notebook.name,
        status="failed" if error else "ok",
        attempts=attempt,
        seconds=time.perf_counter() - started,
        outputs=outputs,
        error=error,
        stages=stages,
    )


def _attempt(job: Job, options: ExecutionOptions, stages: dict[str, float]) -> tuple[str | None, bool, dict[str, str]]:
    """(error or None, whether the error is permanent, outputs written); ``stages`` receives the seconds spent."""
    final = job.output_dir / f"{job.notebook.name}.ipynb"
    partial = job.output_dir / f".{job.notebook.name}.partial.ipynb"
    job.output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(job.notebook.path),
            str(partial),
            parameters=job.papermill_parameters,
            engine_name=options.engine,
            kernel_name=options.kernel_name,
            progress_bar=False,
            execution_timeout=options.execution_timeout,
            cwd=str(job.notebook.path.parent),
        )
    except PapermillExecutionError as exc:
        _keep(partial, final)
        return (
            f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})",
            exc.ename in PERMANENT_ERRORS,
            {"ipynb": str(final)},
        )
    except Exception as exc:  # kernel died, timed out, could not start: keep what papermill wrote
        _keep(partial, final)
        return f"{type(exc).__name__}: {exc}", False, {"ipynb": str(final)} if final.exists() else {}
    finally:
        stages["execute"] = time.perf_counter() - started
    replace_atomic(partial, final)
    outputs = {"ipynb": str(final)}
    if options.formats:
        try:
            outputs.update(_render(final, job, options.formats, stages))
        except Exception as exc:  # a full disk, a broken template: the job failed, the worker did not
            return f"rendering failed: {type(exc).__name__}: {exc}", False, outputs
    return None, False, outputs


def _keep(partial: Path, final: Path) -> None:
    """Keep what papermill wrote of a failed run (its error banner), unless it is not a whole notebook (a full disk,
    a killed process): then the previous report stays and the fragment goes."""
    if not partial.exists():
        return
    try:
        nbformat.read(partial, as_version=4)  # type: ignore[no-untyped-call]
    except Exception:  # truncated or empty: any parse error means "not a whole notebook"
        log.warning("discarding an incomplete executed notebook %s", partial)
        partial.unlink(missing_ok=True)
        return
    replace_atomic(partial, final)


def _ledger_write(job: Job, write: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """A ledger write that rides out a short database outage (retried with backoff for ~10 s) and, past that, is
    logged rather than raised: the report itself goes on."""
    for pause in (*LEDGER_RETRY_PAUSES, None):
        try:
            return write(*args, **kwargs)
        except SQLAlchemyError as exc:
            if pause is None:
                log.warning("%s: the run ledger could not be written (%s); the report itself goes on", job.key, exc)
                return None
            time.sleep(pause)
    return None


def _render(executed: Path, job: Job, formats: tuple[str, ...], stages: dict[str, float]) -> dict[str, str]:
    """HTML (and PDF from it) for a successful notebook, with this worker's exporter and persistent browser."""
    from report_lib.render.browser import worker_printer  # nbconvert/Chromium load only where rendering happens
    from report_lib.render.report import render_outputs

    browser = worker_printer() if "pdf" in formats else None
    return render_outputs(executed, formats=formats, title=job.notebook.title, browser=browser, timings=stages)


def check_engine(name: str) -> str:
    """``name`` if papermill knows such an engine (ours register by entry point), else ReportNotFoundError."""
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillException

    try:
        papermill_engines.get_engine(name)
    except PapermillException:
        known = [str(engine) for engine in getattr(papermill_engines, "_engines", {}) if engine]
        raise ReportNotFoundError("papermill engine", name, known) from None
    return name
