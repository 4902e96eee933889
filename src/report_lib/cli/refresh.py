"""`runner.py refresh [--full]`: bring daily_metrics up to date from the order lines, in the database."""

from __future__ import annotations

import argparse
from typing import Any

from report_lib.config import Settings
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.refresh import refresh_daily_metrics


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "refresh",
        help="bring daily_metrics up to date from the order lines",
        description=(
            "Recompute daily_metrics for the store-days touched by order lines loaded since the last refresh "
            "(late lines included). Imported daily/weekly totals are never overwritten."
        ),
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="recompute every store-day from all order lines, not only those touched since the last refresh",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    """Refresh, print a one-line summary; errors of ours propagate to the CLI's one-line error handler."""
    engine = create_warehouse_engine(settings.database_url)
    try:
        ensure_schema(engine)
        result = refresh_daily_metrics(engine, full=bool(args.full))
    finally:
        engine.dispose()
    print(result.summary())
    return 0
