#!/usr/bin/env python
"""Store Performance Reports command line; see `python runner.py --help`. All logic lives in report_lib."""

import sys

from report_lib.cli import main

if __name__ == "__main__":
    sys.exit(main())
