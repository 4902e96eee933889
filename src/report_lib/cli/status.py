"""`runner.py status`: the run ledger — recent runs, failures, durations; Prometheus metrics."""

from __future__ import annotations

import argparse

import pandas as pd
from rich.console import Console
from rich.table import Table

from report_lib.config import Settings
from report_lib.run.ledger import recent_runs, run_metrics
from report_lib.run.metrics import prometheus_text
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="recent report runs, failures and durations from the ledger")
    parser.add_argument("--limit", type=int, default=30, help="how many attempts to list (default 30)")
    parser.add_argument("--failed", action="store_true", help="only failed attempts")
    parser.add_argument("--prometheus", action="store_true", help="print run metrics in Prometheus text format")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_warehouse_engine(settings.absolute_database_url())
    ensure_schema(engine)
    console = Console()
    if args.prometheus:
        console.out(prometheus_text(run_metrics(engine)), end="", highlight=False)
        return 0
    runs = recent_runs(engine, limit=args.limit, failed_only=args.failed)
    if runs.empty:
        console.print("No runs recorded yet: try `runner.py run --period last-week`.")
        return 0
    table = Table(title="recent runs (newest first)")
    for column in ("started", "store", "notebook", "period", "attempt", "status", "seconds", "error"):
        table.add_column(column)
    for row in runs.to_dict(orient="records"):
        status = {"ok": "[green]ok[/]", "failed": "[red]failed[/]"}.get(str(row["status"]), str(row["status"]))
        seconds = "" if pd.isna(row["seconds"]) else f"{row['seconds']:.1f}"
        table.add_row(
            f"{row['started_at']:%Y-%m-%d %H:%M:%S}",
            str(row["store_code"]),
            str(row["notebook"]),
            str(row["period"]),
            str(row["attempt"]),
            status,
            seconds,
            str(row["error"] or "")[:70],
        )
    console.print(table)
    return 0
