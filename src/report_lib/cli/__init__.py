"""The command line: `python runner.py <command>` or `store-reports <command>`.

One module per command, each with ``add_parser(subparsers)`` that sets ``handler``; handlers take the parsed
arguments and the resolved Settings and return an exit code. Errors of ours become one clear line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from report_lib.cli import beat, demo, health, imports, refresh, run, schedule, serve, status, worker
from report_lib.config import load_settings
from report_lib.errors import ReportError
from report_lib.logs import configure_logging

COMMANDS = (demo, imports, refresh, run, schedule, status, health, serve, worker, beat)
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runner.py",
        description="Store Performance Reports: warehouse, reports, emails and dashboards for retail stores.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings, verbose=args.verbose)
        return int(args.handler(args, settings))
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
