"""`runner.py health`: database, kernel, Chromium, SMTP and Redis; exit code 0 only if healthy."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from report_lib.config import Settings
from report_lib.run.health import run_checks


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "health", help="check the database, a kernel, Chromium, SMTP and Redis (when configured); exit 0 if healthy"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    checks = run_checks(settings)
    table = Table(title="health")
    for column in ("check", "status", "seconds", "detail"):
        table.add_column(column)
    colours = {"ok": "green", "failed": "red", "skipped": "yellow"}
    for check in checks:
        status = f"[{colours[check.status]}]{check.status}[/]"
        table.add_row(check.name, status, f"{check.seconds:.1f}", check.detail)
    Console().print(table)
    return 1 if any(check.status == "failed" for check in checks) else 0
