"""`runner.py schedule`: run the jobs of parameters/schedule.yaml in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from report_lib.config import Settings
from report_lib.run import schedule
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema

log = logging.getLogger(__name__)
TICK_SECONDS = 20


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "schedule",
        help="run the jobs of parameters/schedule.yaml in the foreground (Ctrl-C to stop)",
        description="Runs each job of parameters/schedule.yaml at its cron times. A run missed while the "
        "scheduler was down is caught up once at start; a job never runs twice at once, even with two schedulers.",
    )
    parser.add_argument("--file", default=None, help="schedule file (default: parameters/schedule.yaml)")
    parser.add_argument("--once", action="store_true", help="run whatever is due now, then exit")
    parser.add_argument("--list", action="store_true", help="show the jobs and their next run times, then exit")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    path = settings.parameters_dir / "schedule.yaml" if args.file is None else Path(args.file)
    jobs = schedule.load_schedule(path)
    engine = create_warehouse_engine(settings.absolute_database_url())
    ensure_schema(engine)
    schedule.initialise(engine, jobs, now=dt.datetime.now())
    console = Console()
    if args.list:
        for job in jobs:
            console.print(f"{job.name:<28} {job.cron:<16} next {job.next_fire(dt.datetime.now()):%Y-%m-%d %H:%M}")
        return 0
    console.print(f"scheduler started with {len(jobs)} jobs from {path}; Ctrl-C to stop")
    failures = 0
    while True:
        for job in jobs:
            fire = _claim_next(engine, job)
            if fire is None:
                continue
            with _heartbeat(engine, job.name, every=schedule.HEARTBEAT.total_seconds()):
                status = _run(job, fire, settings, console)
            failures += status != "ok"
            schedule.release(engine, job.name, status=status, now=dt.datetime.now())
        if args.once:
            return 1 if failures else 0
        time.sleep(TICK_SECONDS)


def _claim_next(engine: Engine, job: schedule.ScheduledJob) -> dt.datetime | None:
    """The fire to run now, claimed: first a run interrupted by a scheduler that died, else the due fire."""
    now = dt.datetime.now()
    interrupted = schedule.take_over(engine, job.name, now=now)
    if interrupted is not None:
        log.warning("%s: the run for %s was interrupted mid-way; running it again once", job.name, interrupted)
        return interrupted
    fire = schedule.due_fire(job, last_fire=schedule.last_fire(engine, job.name), now=now)
    if fire is None or not schedule.claim(engine, job.name, fire, now=now, stale_after=schedule.HEARTBEAT_STALE):
        return None
    return fire


@contextlib.contextmanager
def _heartbeat(engine: Engine, job: str, *, every: float) -> Iterator[None]:
    """Refresh the job's claim every ``every`` seconds while the run goes on, so only a dead scheduler's goes stale."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                schedule.heartbeat(engine, job, now=dt.datetime.now())
            except Exception as exc:  # the database may blink; the run goes on and the next beat tries again
                log.warning("%s: could not refresh the schedule claim: %s", job, exc)

    thread = threading.Thread(target=beat, name=f"heartbeat-{job}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _run(job: schedule.ScheduledJob, fire: dt.datetime, settings: Settings, console: Console) -> str:
    from report_lib.run.batch import BatchOptions, run_batch
    from report_lib.run.plan import RunRequest

    console.print(f"{dt.datetime.now():%Y-%m-%d %H:%M} running {job.name} (fire {fire:%Y-%m-%d %H:%M})")
    # named periods count from the fire's day, so a run caught up or re-run later reports the same period
    request = RunRequest(stores=job.stores, notebooks=job.notebooks, period=job.period, as_of=fire.date())
    options = BatchOptions(workers=job.workers or os.cpu_count() or 1, formats=job.formats, send=job.send)
    try:
        result = run_batch(request, settings, options)
    except Exception:
        log.exception("scheduled job %s could not run", job.name)
        return "failed"
    console.print(f"{job.name}: {len(result.results) - len(result.failed)}/{len(result.results)} reports ok")
    return "failed" if result.failed else "ok"
