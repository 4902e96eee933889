"""Execution backends: where jobs run. ``local`` is a pool of worker processes on this machine.

A registry, because backends are a real extension point (a Celery backend runs the same jobs past one machine).
"""

from __future__ import annotations

import importlib
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Protocol

from report_lib.errors import ReportNotFoundError
from report_lib.run.execute import ExecutionOptions, JobResult, pin_threads, run_job
from report_lib.run.plan import Job

OnResult = Callable[[JobResult], None]


class Backend(Protocol):
    def execute(
        self, jobs: Sequence[Job], options: ExecutionOptions, *, workers: int, on_result: OnResult
    ) -> list[JobResult]: ...


class LocalBackend:
    """Worker processes (papermill is process-safe, not thread-safe); BLAS pinned to one thread in each."""

    def execute(
        self, jobs: Sequence[Job], options: ExecutionOptions, *, workers: int, on_result: OnResult
    ) -> list[JobResult]:
        results = []
        context = multiprocessing.get_context("spawn")  # no forked copies of the parent's sockets or threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=pin_threads) as pool:
            futures = {pool.submit(run_job, job, options): job for job in jobs}
            for future in as_completed(futures):
                result = _result_of(future, futures[future])
                on_result(result)
                results.append(result)
        return results


def _result_of(future: Future[JobResult], job: Job) -> JobResult:
    """The job's result; a worker process that died is one failed job, not a failed run."""
    try:
        return future.result()
    except Exception as exc:
        return JobResult(job.key, job.store, job.notebook.name, "failed", 1, 0.0, {}, f"worker died: {exc!r}")


BACKENDS: dict[str, Backend] = {"local": LocalBackend()}
LAZY_BACKENDS = {"celery": "report_lib.run.celery_backend"}  # modules that register themselves when first asked for


def register(name: str, backend: Backend) -> None:
    BACKENDS[name] = backend


def get_backend(name: str) -> Backend:
    if name not in BACKENDS and name in LAZY_BACKENDS:
        importlib.import_module(LAZY_BACKENDS[name])  # celery and redis load only for runs that use them
    try:
        return BACKENDS[name]
    except KeyError:
        raise ReportNotFoundError("backend", name, {*BACKENDS, *LAZY_BACKENDS}) from None
