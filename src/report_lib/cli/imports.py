"""`runner.py import lines FILE` and `runner.py import daily FILE`: load a real CSV export into the warehouse."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from report_lib.config import Settings
from report_lib.errors import ConfigError
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.import_options import ImportOptions, Kind, parse_mapping
from report_lib.warehouse.import_presets import PRESETS, apply_overrides, get_preset
from report_lib.warehouse.importers import AllRowsRejectedError, ImportResult, import_file

EXIT_OK = 0
EXIT_ALL_REJECTED = 1

LINES_EXAMPLES = """\
examples:
  runner.py import lines sales.csv --store S001
  runner.py import lines export.csv --map order_id=Receipt --map sku=Article --map timestamp="Sold at"
  runner.py import lines export.csv --delimiter ';' --decimal , --date-format '%d.%m.%Y %H:%M'
  runner.py import lines ../shared/data/online_retail_uci_sample/online_retail_random20k.csv --preset online-retail

fields (map with --map FIELD=COLUMN; columns named like a field are found without --map):
  required: store (or --store), order_id, timestamp, sku, quantity, unit_price
  optional: customer, product_name, category, unit_cost, discount (a money amount per line)
Negative quantities are returns. After importing lines, run `runner.py refresh` to update daily_metrics.
"""

DAILY_EXAMPLES = """\
examples:
  runner.py import daily totals.csv --map revenue=Sales --map orders=Tickets
  runner.py import daily weekly.csv --grain week --week-date start --store S001
  runner.py import daily ../shared/data/walmart_store_sales/Walmart_Store_sales.csv --preset walmart

fields (map with --map FIELD=COLUMN; columns named like a field are found without --map):
  required: store (or --store), date, and revenue and/or orders
  optional: units, customers, cost, returns
Weekly totals stay weekly: one row per store and week, dated on the week's last day.
"""


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register `import` with its `lines` and `daily` subcommands."""
    parser = subparsers.add_parser(
        "import",
        help="load a CSV export: order lines, or store totals per day or week",
        description="Load a CSV export into the warehouse in one transaction; rows that fail a check are written "
        "to a reject file with the line, column, value found and value expected.",
    )
    kinds = parser.add_subparsers(dest="import_kind", required=True, metavar="<kind>")
    for kind, help_text, epilog in (
        ("lines", "order lines (one row per product in an order)", LINES_EXAMPLES),
        ("daily", "store totals per day, or per week with --grain week", DAILY_EXAMPLES),
    ):
        sub = kinds.add_parser(
            kind,
            help=help_text,
            description=f"Import {help_text}.",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common_options(sub)
        if kind == "lines":
            _add_lines_options(sub)
        else:
            _add_daily_options(sub)
        sub.set_defaults(handler=run_import, import_kind=kind)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, metavar="FILE", help="the CSV file to import")
    presets = ", ".join(f"{name} ({preset.description})" for name, preset in PRESETS.items())
    parser.add_argument("--preset", choices=sorted(PRESETS), help=f"settings for a known export: {presets}")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="take FIELD from the file's COLUMN (repeatable), e.g. --map order_id=InvoiceNo",
    )
    parser.add_argument("--delimiter", help="field separator: , ; | or tab (default: guessed from the header)")
    parser.add_argument("--encoding", help="text encoding (default: UTF-8, falling back to latin-1 with a warning)")
    parser.add_argument("--date-format", help="strftime format of dates, e.g. %%d-%%m-%%Y (default: ISO 8601)")
    parser.add_argument("--decimal", choices=[".", ","], help="decimal mark of numbers (default: .)")
    parser.add_argument("--store", metavar="CODE", help="store code for files without a store column")
    parser.add_argument(
        "--create-stores",
        action="store_true",
        default=None,
        help="create stores missing from the warehouse instead of rejecting their rows",
    )
    parser.add_argument("--currency", help="currency of stores created by this import (default: USD)")
    parser.add_argument("--as-of", metavar="YYYY-MM-DD", help="'today' for the future-date check (default: today)")
    parser.add_argument(
        "--rejects", type=Path, metavar="PATH", help="reject file (default: rejects/<file name>.rejects.csv)"
    )
    parser.add_argument("--dry-run", action="store_true", help="check the file and report; write nothing")


def _add_lines_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--return-prefix", metavar="TEXT", help="order ids starting with TEXT are returns (quantities made negative)"
    )
    parser.add_argument(
        "--reject-zero-price",
        action="store_true",
        default=None,
        help="reject lines with a zero unit price (free items, stock adjustments)",
    )


def _add_daily_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grain", choices=["day", "week"], help="one row per store and day or week (default: day)")
    parser.add_argument(
        "--week-date",
        choices=["end", "start"],
        help="weekly files: is the date the week's last or first day (stored on the last; default: end)",
    )


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    """The handler: import, print what happened, exit 0 if anything loaded (or already had), 1 if all rejected."""
    kind: Kind = args.import_kind
    options = build_options(args, kind)
    engine = create_warehouse_engine(settings.database_url)
    console = Console(highlight=False, soft_wrap=True)
    try:
        ensure_schema(engine)
        result = import_file(engine, args.file, kind=kind, options=options, dry_run=args.dry_run)
    except AllRowsRejectedError as exc:
        console.print(f"[bold red]Nothing imported[/]: {exc}")
        console.print(_reasons_table(exc.rejected))
        return EXIT_ALL_REJECTED
    finally:
        engine.dispose()
    print_result(console, result)
    return EXIT_OK


def build_options(args: argparse.Namespace, kind: Kind) -> ImportOptions:
    """ImportOptions from the preset (if any) overridden by every option given on the command line."""
    base = ImportOptions()
    if args.preset:
        preset = get_preset(args.preset)
        if preset.kind != kind:
            raise ConfigError(f"--preset {args.preset} is for `import {preset.kind}`, not `import {kind}`")
        base = preset.options
    given: dict[str, Any] = {
        "mapping": parse_mapping(args.map),
        "delimiter": _delimiter(args.delimiter),
        "encoding": args.encoding,
        "date_format": args.date_format,
        "decimal": args.decimal,
        "default_store": args.store,
        "create_stores": args.create_stores,
        "currency": args.currency,
        "as_of": _date(args.as_of),
        "rejects_path": args.rejects,
        "return_prefix": getattr(args, "return_prefix", None),
        "reject_zero_price": getattr(args, "reject_zero_price", None),
        "grain": getattr(args, "grain", None),
        "week_date": getattr(args, "week_date", None),
    }
    return apply_overrides(base, {name: value for name, value in given.items() if value is not None})


def _delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    return "\t" if value.lower() in {"\\t", "tab", "\t"} else value


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--as-of {value!r} is not a date; expected YYYY-MM-DD, e.g. 2024-03-31") from exc


def print_result(console: Console, result: ImportResult) -> None:
    what = "order lines" if result.kind == "lines" else "store totals"
    if result.previous is not None:
        previous = result.previous
        console.print(
            f"{result.path} was already imported as batch {previous.batch_id} on "
            f"{previous.loaded_at:%Y-%m-%d %H:%M}; nothing to do. (To load rows rejected then, fix them in the "
            "reject file and import that file.)"
        )
        return
    header = "Dry run (nothing written)" if result.dry_run else f"Imported as batch {result.batch_id}"
    console.print(f"[bold]{header}[/]: {result.path} ({what}, {result.encoding}, delimiter {result.delimiter!r})")
    console.print(f"  columns: {', '.join(f'{field}={column}' for field, column in result.columns.items())}")
    console.print(
        f"  rows read {result.rows_read:,}   loaded {result.rows_loaded:,}   rejected {result.rows_rejected:,}   "
        f"({result.seconds:.1f} s, {result.rows_read / max(result.seconds, 1e-9):,.0f} rows/s)"
    )
    if result.stores_created:
        shown = ", ".join(result.stores_created[:10]) + (" ..." if len(result.stores_created) > 10 else "")
        verb = "would create" if result.dry_run else "created"
        console.print(f"  stores {verb}: {len(result.stores_created)} ({shown})")
    if result.rejected:
        console.print(_reasons_table(result.rejected))
        console.print(f"  rejected rows (with line, column, found, expected): {result.rejects_file}")
    if result.kind == "lines" and not result.dry_run:
        console.print("Next: run `python runner.py refresh` to bring daily_metrics up to date with these lines.")


def _reasons_table(rejected: dict[str, int]) -> Table:
    table = Table(title="Rejected rows by reason", title_justify="left")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for reason, count in rejected.items():
        table.add_row(reason, f"{count:,}")
    return table
