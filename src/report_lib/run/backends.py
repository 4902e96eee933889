"""Execution backends: where jobs run. ``local`` is a pool of worker processes on this machine.

A registry, because backends are a real extension point (a Celery backend runs the same jobs past one machine).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from report_lib.errors import ReportNotFoundError
from report_lib.run import ledger
from report_lib.run.execute import ExecutionOptions, JobResult, pin_threads, run_job
from report_lib.run.plan import Job
from report_lib.warehouse.engine import create_warehouse_engine

log = logging.getLogger(__name__)

OnResult = Callable[[JobResult], None]


class Backend(Protocol):
    def execute(
        self, jobs: Sequence[Job], options: ExecutionOptions, *, workers: int, on_result: OnResult
    ) -> list[JobResult]: ...


class LocalBackend:
    """Worker processes (papermill is process-safe, not thread-safe); BLAS pinned to one thread in each.

    A worker process that dies (killed, out of memory) breaks a ProcessPoolExecutor for every job it holds; the
    jobs not finished then run again in a new pool, up to MAX_POOL_RESTARTS times, and the ledger rows the dead
    pool left 'running' are closed as failed.
    """

    MAX_POOL_RESTARTS = 2

    def execute(
        self, jobs: Sequence[Job], options: ExecutionOptions, *, workers: int, on_result: OnResult
    ) -> list[JobResult]:
        results: list[JobResult] = []
        pending = list(jobs)
        for restart in range(self.MAX_POOL_RESTARTS + 1):
            finished, broken = self._run_pool(pending, options, workers=workers)
            for result in finished:
                on_result(result)
            results += finished
            done = {result.key for result in finished}
            pending = [job for job in pending if job.key not in done]
            if not broken or not pending:
                break
            close_abandoned_attempts(options.database_url, options.batch)
            log.warning("a worker process died; %d unfinished jobs run again (restart %d)", len(pending), restart + 1)
        for job in pending:  # the pool kept breaking: these jobs fail, the run goes on
            result = JobResult(job.key, job.store, job.notebook.name, "failed", 1, 0.0, {}, "worker process died")
            on_result(result)
            results.append(result)
        return results

    @staticmethod
    def _run_pool(jobs: Sequence[Job], options: ExecutionOptions, *, workers: int) -> tuple[list[JobResult], bool]:
        """(results of the jobs that finished, whether the pool broke)."""
        finished: list[JobResult] = []
        context = multiprocessing.get_context("spawn")  # no forked copies of the parent's sockets or threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=pin_threads) as pool:
            futures = {pool.submit(run_job, job, options): job for job in jobs}
            for future in as_completed(futures):
                try:
                    finished.append(future.result())
                except BrokenProcessPool:
                    return finished, True
        return finished, False


def close_abandoned_attempts(database_url: str, batch: str) -> None:
    """Mark the batch's attempts still 'running' as failed: their process is gone."""
    engine = create_warehouse_engine(database_url)
    try:
        ledger.fail_running_batch(engine, batch=batch, error="worker process died mid-notebook")
    finally:
        engine.dispose()


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
