"""`runner.py worker`: a Celery worker that runs report jobs submitted with `run --backend celery` or by beat."""

from __future__ import annotations

import argparse
import logging
import os

from report_lib.config import Settings

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="start a Celery worker for `run --backend celery` and beat (REPORT_CELERY_BROKER_URL)",
        description="Starts a Celery worker with a pool of processes (papermill is not thread-safe), each with one "
        "BLAS thread. It reads the warehouse, output directory and SMTP settings from its own environment: every "
        "machine needs the same REPORT_DATABASE_URL database and the shared REPORT_OUTPUT_DIR (see docs/celery.md).",
    )
    parser.add_argument(
        "--concurrency", type=int, default=os.cpu_count() or 1, metavar="N", help="worker processes (default: cores)"
    )
    parser.add_argument(
        "--queues", default=None, metavar="Q", help="queues to consume, Q1,Q2 (default: REPORT_CELERY_QUEUE or reports)"
    )
    parser.add_argument(
        "--hostname", default=None, metavar="NAME", help="worker name, e.g. reports1@%%h (default: celery@host)"
    )
    parser.add_argument(
        "--loglevel", default=None, metavar="LEVEL", help="Celery's log level (default: REPORT_LOG_LEVEL)"
    )
    parser.add_argument("--events", action="store_true", help="send task events, for Flower's task views")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from report_lib.errors import ConfigError
    from report_lib.run.celery_app import CeleryTuning, create_app
    from report_lib.run.execute import pin_threads
    from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema

    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {args.concurrency}")
    pin_threads()  # before the pool forks: its processes and their kernels inherit one BLAS thread each
    tuning = CeleryTuning.from_env()
    app = create_app(settings, tuning)
    engine = create_warehouse_engine(settings.absolute_database_url())
    try:
        ensure_schema(engine)  # an unreachable warehouse fails here, not in the first task
        warehouse = engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    log.info(
        "worker: warehouse %s, outputs %s, queue %s, %d processes",
        warehouse,
        settings.output_dir.resolve(),
        args.queues or tuning.queue,
        args.concurrency,
    )
    argv = [
        "worker",
        "--pool=prefork",
        f"--concurrency={args.concurrency}",
        f"--queues={args.queues or tuning.queue}",
        f"--loglevel={args.loglevel or settings.log_level}",
    ]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    if args.events:
        argv.append("--task-events")
    app.worker_main(argv)
    return 0
