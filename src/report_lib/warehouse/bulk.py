"""Fast bulk inserts of DataFrames: COPY on PostgreSQL, one executemany on SQLite.

SQLAlchemy's ORM-free ``insert()`` with a list of dicts costs ~10 µs a row in Python; these paths hand rows to the
driver directly, inside the caller's transaction, so an import stays all-or-nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import JSON, Connection, Date, DateTime, Table

COPY_CHUNK_ROWS = 100_000
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # the format SQLAlchemy itself writes and parses


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert every row of ``frame`` (columns named as the table's) into ``table``; returns the row count."""
    if frame.empty:
        return 0
    columns = [c for c in frame.columns if c in table.c]
    unknown = set(frame.columns) - set(columns)
    if unknown:
        raise ValueError(f"columns {sorted(unknown)} are not in table {table.name}")
    if conn.dialect.name == "postgresql":
        _copy_postgres(conn, table, frame[columns])
    else:
        _executemany_sqlite(conn, table, frame[columns])
    return len(frame)


def _copy_postgres(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    quoted = ", ".join(f'"{c}"' for c in frame.columns)
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for rows in _python_rows(frame, table, for_sqlite=False):
            for row in rows:
                copy.write_row(row)


def _executemany_sqlite(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    placeholders = ", ".join("?" for _ in frame.columns)
    quoted = ", ".join(f'"{c}"' for c in frame.columns)
    sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({placeholders})'
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        for rows in _python_rows(frame, table, for_sqlite=True):
            cursor.executemany(sql, rows)
    finally:
        cursor.close()


def _python_rows(frame: pd.DataFrame, table: Table, *, for_sqlite: bool) -> Iterator[Sequence[tuple[Any, ...]]]:
    """Rows as tuples of plain Python values (None for missing), in chunks."""
    converted = [_column_values(frame[name], table.c[name].type, for_sqlite=for_sqlite) for name in frame.columns]
    for start in range(0, len(frame), COPY_CHUNK_ROWS):
        chunk = [values[start : start + COPY_CHUNK_ROWS] for values in converted]
        yield list(zip(*chunk, strict=True))


def _column_values(series: pd.Series, sql_type: Any, *, for_sqlite: bool) -> list[Any]:
    """Plain Python values for the driver, None where missing; vectorised (a Python loop costs ~1 s per 1M rows)."""
    if isinstance(sql_type, DateTime | Date):
        stamps = pd.to_datetime(series)
        if for_sqlite:
            text = stamps.dt.strftime(SQLITE_DATETIME_FORMAT if isinstance(sql_type, DateTime) else "%Y-%m-%d")
            return text.astype(object).where(stamps.notna(), None).tolist()
        values = stamps.dt.to_pydatetime() if isinstance(sql_type, DateTime) else stamps.dt.date.to_numpy()
        return pd.Series(values, dtype=object).where(stamps.notna().to_numpy(), None).tolist()
    if isinstance(sql_type, JSON):
        return [json.dumps(value) for value in series.tolist()]
    return series.astype(object).where(series.notna(), None).tolist()  # numpy scalars become int/float/str


def as_date(value: dt.date | dt.datetime | str) -> dt.date:
    """A date from a date, datetime or ISO string (SQLite returns dates as strings in raw queries)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
