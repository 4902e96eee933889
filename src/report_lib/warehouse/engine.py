"""Engine creation from a URL, and the versioned create step of the schema."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError

from report_lib.errors import ConfigError, WarehouseError
from report_lib.warehouse.schema import SCHEMA_VERSION, metadata, schema_version

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and route PostgreSQL through psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"Database URL {url!r} is not a SQLAlchemy URL: {exc}") from exc
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ConfigError(
            f"Database URL uses {parsed.get_backend_name()!r}; supported are sqlite:///path.db and "
            "postgresql+psycopg://user@host:5432/dbname"
        )
    return parsed.render_as_string(hide_password=False)


def create_warehouse_engine(url: str, **engine_options: Any) -> Engine:
    """An Engine for the warehouse at ``url``; SQLite files get their folder created and WAL mode."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _make_folder(Path(parsed.database))
        engine = create_engine(url, **engine_options)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True, **engine_options)


def _make_folder(database: Path) -> None:
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WarehouseError(
            f"Cannot create the folder {database.parent} for the SQLite warehouse {database}: {exc.strerror or exc}. "
            "Check REPORT_DATABASE_URL (sqlite:///relative/path.db or sqlite:////absolute/path.db)."
        ) from exc


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # one writer and many reader processes at once
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def ensure_schema(engine: Engine) -> int:
    """Create the schema if absent and record its version; safe to run any number of times.

    Returns the schema version in force. Refuses a database written by a newer version of this code.
    """
    try:
        with engine.begin() as conn:
            found = _recorded_version(conn)
            if found is not None and found > SCHEMA_VERSION:
                raise WarehouseError(
                    f"The warehouse has schema version {found}, newer than this code's {SCHEMA_VERSION}; "
                    "upgrade report_lib or point REPORT_DATABASE_URL at another database."
                )
            metadata.create_all(conn)
            if found is None:
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION, applied_at=dt.datetime.now()))
                log.info("created warehouse schema version %d", SCHEMA_VERSION)
    except DatabaseError as exc:  # OperationalError (unreachable, refused), or a file that is not a database
        raise WarehouseError(
            f"Cannot open the warehouse at {engine.url.render_as_string(hide_password=True)}: {exc.orig}. "
            "Check REPORT_DATABASE_URL and that the database server is running."
        ) from exc
    return SCHEMA_VERSION


def _recorded_version(conn: Any) -> int | None:
    if not inspect(conn).has_table(schema_version.name):
        return None
    version: int | None = conn.execute(
        select(schema_version.c.version).order_by(schema_version.c.version.desc())
    ).scalar()
    return version
