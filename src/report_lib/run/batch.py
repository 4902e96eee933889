"""One `runner.py run`: plan, execute on a backend, write the portal page, deliver the emails."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from report_lib.config import Settings
from report_lib.params import ParameterFiles
from report_lib.run.backends import get_backend
from report_lib.run.execute import DEFAULT_ENGINE, ExecutionOptions, JobResult, RetryPolicy, check_engine, skipped
from report_lib.run.plan import Job, RunRequest, plan_jobs
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.loaders.daily import load_stores, stores_with_order_lines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOptions:
    workers: int = 2
    backend: str = "local"
    formats: tuple[str, ...] | None = None  # None: defaults.yaml
    send: bool = False
    dry_run: bool = False
    retries: int | None = None  # None: defaults.yaml
    retry_delay: float = 2.0
    execution_timeout: int | None = None
    engine: str = DEFAULT_ENGINE  # papermill engine: warm (a kernel per worker, reset between notebooks) | nbclient


@dataclass
class BatchResult:
    batch: str
    jobs: list[Job]
    results: list[JobResult] = field(default_factory=list)
    portal: str | None = None
    deliveries: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if r.status == "failed"]


def run_batch(
    request: RunRequest,
    settings: Settings,
    options: BatchOptions,
    *,
    on_plan: Callable[[Sequence[Job]], None] = lambda jobs: None,
    on_result: Callable[[JobResult], None] = lambda result: None,
) -> BatchResult:
    check_engine(options.engine)
    database_url = settings.absolute_database_url()
    engine = create_warehouse_engine(database_url)
    ensure_schema(engine)
    files = ParameterFiles.load(settings.parameters_dir)
    jobs = plan_jobs(
        request,
        stores=load_stores(engine),
        files=files,
        output_dir=settings.output_dir.resolve(),
        with_order_lines=stores_with_order_lines(engine),
    )
    batch = f"{dt.datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    result = BatchResult(batch, jobs)
    on_plan(jobs)
    if options.dry_run or not jobs:
        return result
    execution = ExecutionOptions(
        database_url=database_url,
        batch=batch,
        formats=options.formats or files.defaults.formats,
        execution_timeout=options.execution_timeout or files.defaults.execution_timeout,
        retry=RetryPolicy(
            retries=files.defaults.retries if options.retries is None else options.retries,
            base_delay=options.retry_delay,
        ),
        engine=options.engine,
    )
    backend = get_backend(options.backend)
    runnable = [job for job in jobs if job.skip_reason is None]
    result.results = [skipped(job) for job in jobs if job.skip_reason is not None]
    for skip in result.results:
        on_result(skip)
    result.results += backend.execute(runnable, execution, workers=options.workers, on_result=on_result)
    from report_lib.run.publish import publish  # rendering libraries load only when there is something to publish

    result.portal, result.deliveries = publish(
        result.jobs, result.results, settings=settings, files=files, engine=engine, send=options.send
    )
    engine.dispose()
    return result
