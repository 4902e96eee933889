"""`runner.py beat`: Celery beat firing the jobs of parameters/schedule.yaml on the Celery workers."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from report_lib.config import Settings


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "beat",
        help="start Celery beat on parameters/schedule.yaml (run it once per deployment)",
        description="Loads the same parameters/schedule.yaml as `runner.py schedule` into Celery beat: at each "
        "cron time a worker claims the job (never two runs of one job at once, even with two beats), runs its "
        "reports on the workers and publishes once all have finished. A time missed while beat was down is "
        "caught up once when it starts again.",
    )
    parser.add_argument(
        "--file", default=None, metavar="PATH", help="schedule file (default: parameters/schedule.yaml)"
    )
    parser.add_argument(
        "--state-file",
        default="data/celerybeat-schedule",
        metavar="PATH",
        help="where beat keeps each job's last run time (default: data/celerybeat-schedule)",
    )
    parser.add_argument("--list", action="store_true", help="show the jobs beat would load and their next run")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console

    from report_lib.run import schedule
    from report_lib.run.celery_app import beat_schedule, create_app
    from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema

    path = settings.parameters_dir / "schedule.yaml" if args.file is None else Path(args.file)
    jobs = schedule.load_schedule(path)
    entries = beat_schedule(jobs)
    if args.list:
        now = dt.datetime.now()
        for job in jobs:
            Console().print(f"{job.name:<28} {job.cron:<16} next {job.next_fire(now):%Y-%m-%d %H:%M}")
        return 0
    engine = create_warehouse_engine(settings.absolute_database_url())
    try:
        ensure_schema(engine)
        schedule.initialise(engine, jobs, now=dt.datetime.now())  # a new job starts at its next fire
    finally:
        engine.dispose()
    app = create_app(settings)
    app.conf.beat_schedule = entries
    state = Path(args.state_file)
    state.parent.mkdir(parents=True, exist_ok=True)
    Console(stderr=True).print(f"beat: {len(entries)} jobs from {path}; state in {state}")
    app.start(["beat", f"--schedule={state}", f"--loglevel={settings.log_level}"])
    return 0
