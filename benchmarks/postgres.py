"""PostgreSQL for the benchmarks: the server's URL and a scratch schema of one's own, dropped afterwards.

Not a benchmark of its own (benchmarks/run.py runs bench_*.py only).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from sqlalchemy import Engine, text

from report_lib.warehouse.engine import create_warehouse_engine

POSTGRES_URL = os.environ.get("REPORT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server to benchmark on: the SQLite figures still stand."""


def in_schema(schema: str) -> str:
    """POSTGRES_URL with ``schema`` as the search path of every connection."""
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


def create_schema(schema: str) -> None:
    """Create ``schema`` if it does not exist; PostgresUnavailable when the server cannot be reached."""
    admin = create_warehouse_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    except Exception as exc:  # the driver's and SQLAlchemy's errors for a server that is not there
        raise PostgresUnavailable(f"{type(exc).__name__}") from exc
    finally:
        admin.dispose()


@contextlib.contextmanager
def scratch_schema() -> Iterator[Engine]:
    """An engine on a new schema of its own, dropped with everything in it afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    create_schema(schema)
    engine = create_warehouse_engine(in_schema(schema))
    try:
        yield engine
    finally:
        engine.dispose()
        admin = create_warehouse_engine(POSTGRES_URL)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
