"""The tasks behind `runner.py beat`: a fire of a schedule.yaml job, run as a chord of report tasks whose callback
publishes (portal page, emails, regional digests) once every report has finished, failures included.

Nobody waits for a beat-fired run, so publishing happens on a worker, in the chord's callback; the job's claim in
``schedule_state`` is taken before anything runs and freed by the callback (or by the chord's error handler), so a
job never runs twice at once, even with two beats. Emails are claimed one by one in the ledger as ever.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from celery import Task, chord, shared_task
from sqlalchemy.exc import IntegrityError

from report_lib.config import Settings
from report_lib.run import schedule
from report_lib.run.celery_app import BATCH_FAILED, PUBLISH_BATCH, RUN_REPORT, SCHEDULED_RUN
from report_lib.run.execute import ExecutionOptions, RetryPolicy
from report_lib.run.tasks import decode_job, decode_result, encode_job, encode_options, encode_result, worker_settings
from report_lib.warehouse.engine import create_warehouse_engine

log = logging.getLogger(__name__)


@shared_task(name=SCHEDULED_RUN, bind=True)  # type: ignore[untyped-decorator]
def scheduled_run(self: Task, job_data: dict[str, Any]) -> str:
    """Claim the job's fire time (never two runs of one job at once), plan it, and submit a chord of its reports
    whose callback publishes the portal and the emails once every report has finished, failures included."""
    job = schedule.ScheduledJob(**job_data)
    settings = worker_settings()
    engine = create_warehouse_engine(settings.absolute_database_url())
    try:
        now = dt.datetime.now()
        fire = job.previous_fire(now)
        with contextlib.suppress(IntegrityError):  # a job seen for the first time by two workers at once
            schedule.initialise(engine, [job], now=fire - dt.timedelta(seconds=1))  # first sight: due at this fire
        if not schedule.claim(engine, job.name, fire, now=now):
            log.info("%s: the run for %s is already claimed; not run twice", job.name, fire)
            return f"{job.name}: already claimed for {fire:%Y-%m-%d %H:%M}"
        try:
            return _submit_scheduled(self, job, fire, settings)
        except Exception:
            schedule.release(engine, job.name, status="failed", now=dt.datetime.now())
            raise
    finally:
        engine.dispose()


def _submit_scheduled(task: Task, job: schedule.ScheduledJob, fire: dt.datetime, settings: Settings) -> str:
    from report_lib.params import ParameterFiles
    from report_lib.run.batch import BatchOptions, run_batch
    from report_lib.run.execute import skipped
    from report_lib.run.plan import RunRequest

    # named periods count from the fire's day, as in `runner.py schedule`: a late run reports the same period
    request = RunRequest(stores=job.stores, notebooks=job.notebooks, period=job.period, as_of=fire.date())
    planned = run_batch(request, settings, BatchOptions(formats=job.formats, dry_run=True))
    defaults = ParameterFiles.load(settings.parameters_dir).defaults
    options = ExecutionOptions(  # as run_batch builds them from defaults.yaml and BatchOptions' defaults
        database_url=settings.absolute_database_url(),
        batch=planned.batch,
        formats=job.formats or defaults.formats,
        execution_timeout=defaults.execution_timeout,
        retry=RetryPolicy(retries=defaults.retries, base_delay=BatchOptions.retry_delay),
    )
    context = {
        "jobs": [encode_job(j) for j in planned.jobs],
        "skipped": [encode_result(skipped(j)) for j in planned.jobs if j.skip_reason is not None],
        "send": job.send,
        "schedule_job": job.name,
    }
    header = [
        task.app.signature(RUN_REPORT, args=(encode_job(j), encode_options(options)))
        for j in planned.jobs
        if j.skip_reason is None
    ]
    body = task.app.signature(PUBLISH_BATCH, kwargs=context)
    body.on_error(task.app.signature(BATCH_FAILED, kwargs={"schedule_job": job.name, "batch": planned.batch}))
    if header:
        chord(header, app=task.app)(body)
    else:
        body.apply_async(args=([],))
    log.info("%s: batch %s submitted, %d reports", job.name, planned.batch, len(header))
    return f"{job.name}: batch {planned.batch}, {len(header)} reports submitted"


@shared_task(name=PUBLISH_BATCH, acks_late=True)  # type: ignore[untyped-decorator]
def publish_batch(
    results: list[dict[str, Any]],
    *,
    jobs: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
    send: bool,
    schedule_job: str | None = None,
) -> dict[str, Any]:
    """The chord's callback: the portal page and (with ``send``) the emails, each claimed once in the ledger."""
    from report_lib.params import ParameterFiles
    from report_lib.run.publish import publish

    settings = worker_settings()
    engine = create_warehouse_engine(settings.absolute_database_url())
    decoded = [decode_result(r) for r in [*skipped, *results]]
    status = "failed" if any(r.status == "failed" for r in decoded) else "ok"
    try:
        files = ParameterFiles.load(settings.parameters_dir)
        portal, lines = publish(
            [decode_job(j) for j in jobs], decoded, settings=settings, files=files, engine=engine, send=send
        )
    except Exception:
        status = "failed"
        raise
    finally:
        if schedule_job:
            schedule.release(engine, schedule_job, status=status, now=dt.datetime.now())
        engine.dispose()
    return {"portal": portal, "deliveries": lines, "status": status}


@shared_task(name=BATCH_FAILED)  # type: ignore[untyped-decorator]
def batch_failed(request: Any, exc: Any, traceback: Any, *, schedule_job: str, batch: str) -> None:
    """A chord whose header failed outright (a task killed by the hard time limit): free the job's claim."""
    log.error("scheduled job %s, batch %s: not published, a report task failed outright: %s", schedule_job, batch, exc)
    engine = create_warehouse_engine(worker_settings().absolute_database_url())
    try:
        schedule.release(engine, schedule_job, status="failed", now=dt.datetime.now())
    finally:
        engine.dispose()
