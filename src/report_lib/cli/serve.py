"""runner.py serve: the Voila dashboards behind a sign-in (see report_lib.dashboards.server for what it enforces)."""

from __future__ import annotations

import argparse
from typing import Any

from report_lib.config import Settings
from report_lib.dashboards.server import add_arguments, ask_password_hash, options_from_args, run_server


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="start the dashboards (Voila) on 127.0.0.1:8866 behind a sign-in",
        description="Serve the Voila dashboards of dashboards/ to the accounts of parameters/users.yaml. "
        "Ctrl-C stops the server.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.hash_password:
        print(ask_password_hash())
        return 0
    return run_server(options_from_args(args), settings)
