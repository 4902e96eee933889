"""`make bench`: run every benchmark module, print one table each, and record them in benchmarks/RESULTS.md.

Each module under benchmarks/ named bench_*.py exposes ``run(quick: bool = False) -> list[dict]``; rows are printed
as they come back. ``python -m benchmarks.run [--quick] [NAME ...]`` runs a subset (names without the bench_ prefix).
BLAS and OpenMP are pinned to one thread before numpy loads, as the report workers do.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import importlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"


def discover() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def markdown_table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def machine() -> str:
    cores = os.cpu_count()
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024**2:.0f} GiB RAM"
    return f"{platform.machine()}, {cores} cores{memory}, Python {platform.python_version()}, {platform.platform()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(discover())})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a first look")
    args = parser.parse_args(argv)
    names = args.names or discover()
    sections = [f"# Benchmark results\n\nRecorded {dt.date.today()} by `make bench` on {machine()}.\n"]
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"== {name}", flush=True)
        rows = module.run(quick=args.quick)
        table = markdown_table(rows)
        print(table, flush=True)
        doc = (module.__doc__ or "").strip()
        sections.append(f"## {name}\n\n{doc}\n\n{table}")
    if not args.names:
        RESULTS.write_text("\n".join(sections))
        print(f"written to {RESULTS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
