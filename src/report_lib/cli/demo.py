"""`runner.py demo`: fill the warehouse with a generated retail chain, then bring daily_metrics up to date."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from report_lib.config import Settings
from report_lib.errors import ConfigError
from report_lib.warehouse.demo import MAX_DAYS, MAX_STORES, MIN_DAYS, DemoSummary, generate_demo
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.refresh import refresh_daily_metrics

EPILOG = """\
examples:
  runner.py demo                         10 stores, two years ending yesterday (about 1M order lines)
  runner.py demo --stores 3 --days 120   a small warehouse for trying things out
  runner.py demo --end 2024-06-30        a fixed period: the same seed and end give identical data

The warehouse is REPORT_DATABASE_URL (default sqlite:///data/warehouse.db). A warehouse holding only demo data is
replaced; one holding imported data is left alone unless --force is given (which deletes everything first).
"""


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="fill the warehouse with realistic generated data (stores, products, customers, baskets, returns)",
        description="Generate a deterministic retail chain (stores with trends, weekly and yearly seasonality,\n"
        "holidays, promotions, baskets with product affinities, customers, returns, stock-outs, inventory\n"
        "and a few planted anomalies), load it in one transaction, then refresh daily_metrics.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--stores", type=int, default=10, metavar="N", help=f"number of stores, 1-{MAX_STORES} (default 10)"
    )
    parser.add_argument(
        "--days",
        type=int,
        default=730,
        metavar="D",
        help=f"days of history, {MIN_DAYS}-{MAX_DAYS} (default 730: two years)",
    )
    parser.add_argument(
        "--seed", type=int, default=42, metavar="S", help="random seed; same seed and --end, same data (default 42)"
    )
    parser.add_argument("--end", metavar="YYYY-MM-DD", help="last day of the data (default: yesterday)")
    parser.add_argument(
        "--force", action="store_true", help="replace the warehouse even if it holds imported (non-demo) data"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    """Validate, generate with a progress bar on stderr, refresh daily_metrics, print a summary on stdout."""
    stores, days, end = _validated(args)
    engine = create_warehouse_engine(settings.database_url)
    try:
        ensure_schema(engine)
        summary = _generate(engine, stores=stores, days=days, seed=int(args.seed), end=end, force=bool(args.force))
        refreshed = _refresh(engine)
        where = engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()
    print(_summary_text(summary, where=where, refreshed=refreshed))
    return 0


def _validated(args: argparse.Namespace) -> tuple[int, int, dt.date | None]:
    stores, days = int(args.stores), int(args.days)
    if not 1 <= stores <= MAX_STORES:
        raise ConfigError(f"--stores is {stores}; expected a number from 1 to {MAX_STORES}.")
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ConfigError(
            f"--days is {days}; expected a number from {MIN_DAYS} (four weeks) to {MAX_DAYS} (ten years)."
        )
    if args.end is None:
        return stores, days, None
    try:
        return stores, days, dt.date.fromisoformat(str(args.end))
    except ValueError as exc:
        raise ConfigError(f"--end is {args.end!r}; expected a date as YYYY-MM-DD, e.g. --end 2024-06-30.") from exc


def _generate(engine: Engine, *, stores: int, days: int, seed: int, end: dt.date | None, force: bool) -> DemoSummary:
    columns = (TextColumn("generating stores"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("stores", total=stores)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return generate_demo(engine, stores=stores, days=days, seed=seed, end=end, force=force, on_progress=advance)


def _refresh(engine: Engine) -> str:
    """Bring daily_metrics up to date; says what happened."""
    result = refresh_daily_metrics(engine, full=False)
    return f"daily metrics: {result.summary()}"


def _summary_text(summary: DemoSummary, *, where: str, refreshed: str) -> str:
    days = (summary.last_day - summary.first_day).days + 1
    return "\n".join(
        (
            f"demo warehouse: {where}",
            f"  stores {summary.stores}, products {summary.products}, customers {summary.customers:,}",
            f"  days {days} ({summary.first_day.isoformat()} to {summary.last_day.isoformat()})",
            f"  orders {summary.orders:,}, order lines {summary.lines:,} (of which returns {summary.return_lines:,})",
            f"  anomalies planted {summary.anomalies}",
            f"  generated and loaded in {summary.seconds:.1f} s",
            f"  {refreshed}",
        )
    )
