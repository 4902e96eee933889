"""``python -m report_lib.dashboards [options]``: the dashboards server, as ``runner.py serve`` starts it.

The same options and the same code path (``server.run_server``); tests and benchmarks start the server this way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from report_lib.config import load_settings
from report_lib.dashboards.server import add_arguments, ask_password_hash, options_from_args, run_server
from report_lib.errors import ReportError
from report_lib.logs import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report_lib.dashboards", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        if args.hash_password:
            print(ask_password_hash())
            return 0
        settings = load_settings()
        configure_logging(settings)
        return run_server(options_from_args(args), settings)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
