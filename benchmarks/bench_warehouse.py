"""Warehouse: demo generation and load, full refresh of daily_metrics next to the bare GROUP BY, one-day incremental.

For each database (a SQLite temp file; a dedicated PostgreSQL schema in database `test`, dropped after) and each
size (~1M lines: 10 stores x 730 days; ~10M lines: 50 stores x 730 days at scale 2): generate and load the demo
warehouse, ANALYZE, one warm-up refresh, then the bare GROUP BY (the refresh's own SELECT, fetched, no insert) and
the full refresh alternately, median of 3 each; the ratio refresh/bare must stay at or under 1.2. Then a one-day
incremental refresh (a late batch of 20 lines for one old day, then refresh), median of 3; target under 1 s at 10M.
`quick=True` runs only the ~1M size. Run: `python -m benchmarks.bench_warehouse [--quick]`.

`seconds` is wall-clock; `cpu_seconds` is the CPU time of whoever did the work (this process for SQLite, the server
backend of the benchmark's single pooled connection for a PostgreSQL on this machine): on a shared machine the wall
clock mostly measures the neighbours, the CPU time measures the query.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

from benchmarks.postgres import scratch_schema
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.refresh import RefreshResult, daily_aggregate_select, refresh_daily_metrics
from report_lib.warehouse.schema import import_batches, order_lines, products

SIZES = {"1M": (10, 1.0), "10M": (50, 2.0)}  # stores, scale
REPEATS = 3
LATE_LINES = 20
MAX_RATIO = 1.2
ONE_CONNECTION: dict[str, Any] = {"pool_size": 1, "max_overflow": 0}  # the same server backend every time
Row = dict[str, object]
Timing = tuple[float, float | None]  # wall seconds, CPU seconds (None when unknown)


def run(quick: bool = False) -> list[Row]:
    sizes = ["1M"] if quick else ["1M", "10M"]
    rows: list[Row] = []
    for database in ("sqlite", "postgresql"):
        for size in sizes:
            with _warehouse(database) as engine:
                stores, scale = SIZES[size]
                rows.extend(_bench_size(engine, database, stores=stores, scale=scale))
    return rows


def _bench_size(engine: Engine, database: str, *, stores: int, scale: float) -> list[Row]:
    from report_lib.warehouse.demo import generate_demo  # imported late: the generator lands separately

    _progress(f"{database}: generating {stores} stores x 730 days at scale {scale}")
    started = time.perf_counter()
    generate_demo(engine, stores=stores, days=730, seed=7, scale=scale)
    generated = time.perf_counter() - started
    _analyze(engine)
    lines = _count_lines(engine)
    rows = [_row(database, lines, "generate + load", (generated, None), f"{lines / generated:,.0f} lines/s")]
    first = _timed(engine, lambda: refresh_daily_metrics(engine))  # a first refresh is a full one
    rows.append(_row(database, lines, "first refresh (full)", first, "right after the load; warms the cache"))
    _progress(f"{database} {lines:,} lines: first refresh {first[0]:.2f} s; timing bare vs full")
    bare, full = _alternate(
        lambda: _timed(engine, lambda: _bare_group_by(engine)),
        lambda: _timed(engine, lambda: refresh_daily_metrics(engine, full=True)),
    )
    rows.append(_row(database, lines, "bare GROUP BY", bare, f"median of {REPEATS}, alternating with the refresh"))
    rows.append(_row(database, lines, "full refresh", full, _ratio_note(full, bare)))
    _progress(f"{database} {lines:,} lines: incremental refreshes")
    incremental = _median([_incremental_refresh(engine) for _ in range(REPEATS)])
    note = f"{LATE_LINES} late lines for one old day, median of {REPEATS}"
    rows.append(_row(database, lines, "incremental refresh (1 day)", incremental, note))
    return rows


def _ratio_note(full: Timing, bare: Timing) -> str:
    ratios = [f"{full[0] / bare[0]:.2f} wall clock"]
    if full[1] and bare[1]:
        ratios.append(f"{full[1] / bare[1]:.2f} CPU")
    return f"refresh / bare: {', '.join(ratios)} (budget {MAX_RATIO})"


def _alternate(first: Callable[[], Timing], second: Callable[[], Timing]) -> tuple[Timing, Timing]:
    """Medians of each, run in turns so a busy moment of the machine hits both alike."""
    times: tuple[list[Timing], list[Timing]] = ([], [])
    for _ in range(REPEATS):
        times[0].append(first())
        times[1].append(second())
    return _median(times[0]), _median(times[1])


def _median(timings: list[Timing]) -> Timing:
    cpu = [c for _, c in timings if c is not None]
    return statistics.median(w for w, _ in timings), statistics.median(cpu) if len(cpu) == len(timings) else None


def _timed(engine: Engine, action: Callable[[], object]) -> Timing:
    clock = _cpu_clock(engine)
    cpu_before = clock()
    started = time.perf_counter()
    action()
    wall = time.perf_counter() - started
    cpu_after = clock()
    if cpu_before is None or cpu_after is None or cpu_before[0] != cpu_after[0]:
        return wall, None
    return wall, cpu_after[1] - cpu_before[1]


def _cpu_clock(engine: Engine) -> Callable[[], tuple[int, float] | None]:
    """(process id, CPU seconds) of whoever runs the queries: this process, or the PostgreSQL backend."""
    if engine.dialect.name == "sqlite":
        return lambda: (os.getpid(), time.process_time())

    def backend() -> tuple[int, float] | None:
        with engine.connect() as conn:
            pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        try:  # fields 14 and 15 of /proc/<pid>/stat: user and system time in clock ticks
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the server runs elsewhere
            return None
        return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return backend


def _bare_group_by(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(daily_aggregate_select()).all()


def _incremental_refresh(engine: Engine) -> Timing:
    """Load a late batch for one old day of one store, then time the refresh that picks it up."""
    with engine.begin() as conn:
        store, day = conn.execute(
            select(order_lines.c.store_code, order_lines.c.day).order_by(order_lines.c.line_id).limit(1)
        ).one()
        sku = conn.execute(select(products.c.sku).limit(1)).scalar_one()
        batch = int(conn.execute(select(func.max(import_batches.c.batch_id))).scalar_one()) + 1
        conn.execute(
            import_batches.insert().values(
                batch_id=batch, kind="lines", source="benchmark late lines", loaded_at=dt.datetime.now()
            )
        )
        at = dt.datetime.combine(day, dt.time(12))
        conn.execute(order_lines.insert(), [_late_line(store, at, sku, batch, number) for number in range(LATE_LINES)])
    results: list[RefreshResult] = []
    timing = _timed(engine, lambda: results.append(refresh_daily_metrics(engine)))
    if (results[0].mode, results[0].days_recomputed) != ("incremental", 1):
        raise RuntimeError(f"expected a one-day incremental refresh, got {results[0]}")
    return timing


def _late_line(store: str, at: dt.datetime, sku: str, batch: int, number: int) -> dict[str, Any]:
    return {
        "store_code": store,
        "order_id": f"late-{batch}-{number // 2}",
        "ordered_at": at,
        "day": at.date(),
        "customer_id": None,
        "sku": sku,
        "quantity": 1 if number % 5 else -1,
        "unit_price": 9.99,
        "unit_cost": 6.0,
        "discount": 0.0,
        "batch_id": batch,
    }


def _analyze(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _count_lines(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(order_lines)).scalar_one())


@contextlib.contextmanager
def _warehouse(database: str) -> Iterator[Engine]:
    """An empty warehouse: a SQLite file in a temp folder, or a PostgreSQL schema of its own (dropped after)."""
    if database == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench_warehouse_") as folder:
            engine = create_warehouse_engine(f"sqlite:///{Path(folder) / 'warehouse.db'}", **ONE_CONNECTION)
            yield from _schema_created(engine)
        return
    with scratch_schema() as engine:
        yield from _schema_created(engine)


def _schema_created(engine: Engine) -> Iterator[Engine]:
    try:
        ensure_schema(engine)
        yield engine
    finally:
        engine.dispose()


def _row(database: str, lines: int, step: str, timing: Timing, note: str) -> Row:
    wall, cpu = timing
    return {
        "database": database,
        "lines": lines,
        "step": step,
        "seconds": round(wall, 3),
        "cpu_seconds": "" if cpu is None else round(cpu, 3),
        "note": note,
    }


def _progress(message: str) -> None:
    print(f"[bench_warehouse {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    from benchmarks.run import markdown_table

    print(markdown_table(run(quick="--quick" in sys.argv[1:])), end="")
