"""`runner.py run`: execute notebooks for stores × notebooks × period, render, optionally send."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from report_lib.config import Settings
from report_lib.errors import ConfigError
from report_lib.params import FORMATS

if TYPE_CHECKING:  # papermill and nbconvert load only when a run starts, so --help and other commands stay quick
    from report_lib.run.batch import BatchResult
    from report_lib.run.execute import JobResult
    from report_lib.run.plan import Job


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="execute the report notebooks per store, render HTML/PDF, optionally e-mail them",
        description="Execute every (store × notebook) for a period with papermill in parallel worker processes, "
        "render HTML and PDF, write the portal page, and with --send e-mail each store manager "
        "(SMTP from REPORT_SMTP_URL, else .eml files in REPORT_OUTBOX_DIR). Exit code 0 only if every report "
        "succeeded.",
        epilog="examples:  runner.py run --stores S01,S02 --period last-week\n"
        "           runner.py run --notebooks kpis,trends --period 2024-03 --formats html --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stores", default="all", help="all, or store codes separated by commas (default: all)")
    parser.add_argument("--notebooks", default="all", help="all, or notebook names separated by commas")
    parser.add_argument(
        "--period",
        default=None,
        help="last-week | last-month | yesterday | last-7-days | last-28-days | 2024-W10 | 2024-03 | START:END "
        "(default: parameters/defaults.yaml)",
    )
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="the 'today' named periods count from")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    parser.add_argument(
        "--backend",
        default="local",
        help="where jobs run: local (default: a process pool on this machine) or celery (Celery workers started "
        "with `runner.py worker`, through REPORT_CELERY_BROKER_URL; docs/celery.md)",
    )
    parser.add_argument(
        "--engine",
        default="warm",
        help="papermill engine: warm (default: one kernel per worker, imports done once, state reset between "
        "notebooks) or nbclient (papermill's default: a new kernel per notebook)",
    )
    parser.add_argument("--formats", default=None, help=f"comma-separated subset of {','.join(FORMATS)}")
    parser.add_argument("--send", action="store_true", help="e-mail each store's managers and the regional digests")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the jobs; execute nothing")
    parser.add_argument("--retries", type=int, default=None, help="extra attempts for a failed notebook")
    parser.add_argument("--timeout", type=int, default=None, help="seconds a notebook cell may run")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from report_lib.run.batch import BatchOptions, run_batch
    from report_lib.run.plan import RunRequest

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    request = RunRequest(
        stores=args.stores, notebooks=args.notebooks, period=args.period or _default_period(settings), as_of=args.as_of
    )
    options = BatchOptions(
        workers=args.workers,
        backend=args.backend,
        formats=_formats(args.formats),
        send=args.send,
        dry_run=args.dry_run,
        retries=args.retries,
        execution_timeout=args.timeout,
        engine=args.engine,
    )
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("reports", total=0, last="")

        def on_plan(jobs: Sequence[Job]) -> None:
            progress.update(task, total=0 if args.dry_run else len(jobs))

        def on_result(result: JobResult) -> None:
            mark = {"ok": "ok", "skipped": "skipped"}.get(result.status, "FAILED")
            progress.update(task, advance=1, last=f"{result.store}/{result.notebook} {mark}")

        result = run_batch(request, settings, options, on_plan=on_plan, on_result=on_result)
    _summary(result, Console(), dry_run=args.dry_run)
    return 1 if result.failed else 0


def _summary(result: BatchResult, console: Console, *, dry_run: bool) -> None:
    if dry_run:
        console.print(f"{len(result.jobs)} jobs would run (dry run; nothing executed):")
        for job in result.jobs:
            console.print(f"  {job.store:>8}  {job.notebook.name:<16} {job.period.label}  -> {job.output_dir}")
        return
    table = Table(title=f"run {result.batch}")
    for column in ("store", "notebook", "status", "attempts", "seconds", "error"):
        table.add_column(column)
    for r in sorted(result.results, key=lambda r: (r.store, r.notebook)):
        status = {"ok": "[green]ok[/]", "skipped": "[yellow]skipped[/]"}.get(r.status, "[red]failed[/]")
        table.add_row(r.store, r.notebook, status, str(r.attempts), f"{r.seconds:.1f}", (r.error or "")[:80])
    console.print(table)
    counts = {status: sum(r.status == status for r in result.results) for status in ("ok", "failed", "skipped")}
    console.print(
        f"{counts['ok']} of {len(result.results)} reports succeeded, {counts['failed']} failed, "
        f"{counts['skipped']} not applicable."
    )
    if result.portal:
        console.print(f"portal: {result.portal}")
    for line in result.deliveries:
        console.print(line)


def _formats(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    chosen = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise ConfigError(f"Unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    return chosen


def _default_period(settings: Settings) -> str:
    from report_lib.params import ParameterFiles

    return ParameterFiles.load(settings.parameters_dir).defaults.period
