"""The warehouse side of an import: what exists already, and writing one batch inside the caller's transaction."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Column, Connection, MetaData, String, Table, and_, select, update

from report_lib.warehouse.bulk import as_date, insert_frame
from report_lib.warehouse.schema import daily_metrics, import_batches, stores

log = logging.getLogger(__name__)

KEY_LENGTH = 300


@dataclass(frozen=True)
class PreviousBatch:
    batch_id: int
    kind: str
    source: str
    loaded_at: dt.datetime


def find_batch(conn: Connection, sha256: str) -> PreviousBatch | None:
    """The earliest batch that imported a file with this content hash, if any."""
    row = conn.execute(
        select(import_batches.c.batch_id, import_batches.c.kind, import_batches.c.source, import_batches.c.loaded_at)
        .where(import_batches.c.content_sha256 == sha256)
        .order_by(import_batches.c.batch_id)
        .limit(1)
    ).first()
    return None if row is None else PreviousBatch(int(row[0]), str(row[1]), str(row[2]), row[3])


def known_stores(conn: Connection) -> set[str]:
    return {str(code) for code in conn.execute(select(stores.c.code)).scalars()}


def existing_keys(conn: Connection, table: Table, keys: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``keys`` (columns named as ``table``'s) that exist in ``table``, via a temporary table join."""
    names = list(keys.columns)
    distinct = keys.drop_duplicates().reset_index(drop=True)
    if distinct.empty:
        return distinct
    temp = Table(
        "_import_keys",
        MetaData(),
        *[Column(name, String(KEY_LENGTH)) for name in names],
        prefixes=["TEMPORARY"],
    )
    # SQLite autocommits the CREATE (pysqlite opens its transaction at the first INSERT) but rolls back the DROP
    # below with a refused import, leaving the table on the pooled connection: drop such a leftover first.
    temp.drop(conn, checkfirst=True)
    temp.create(conn)
    insert_frame(conn, temp, distinct.astype("object"))
    joined = select(*[temp.c[name] for name in names]).join_from(
        temp, table, and_(*[temp.c[name] == table.c[name] for name in names])
    )
    found = pd.DataFrame(conn.execute(joined).all(), columns=names, dtype="object")
    temp.drop(conn)
    return found.astype("str") if not found.empty else found


def existing_metric_days(conn: Connection, codes: list[str], first: dt.date, last: dt.date) -> pd.DataFrame:
    """daily_metrics rows (store_code, day, grain) of these stores within [first, last]."""
    rows = conn.execute(
        select(daily_metrics.c.store_code, daily_metrics.c.day, daily_metrics.c.grain).where(
            daily_metrics.c.store_code.in_(codes), daily_metrics.c.day >= first, daily_metrics.c.day <= last
        )
    ).all()
    frame = pd.DataFrame(
        {
            "store_code": [str(row[0]) for row in rows],
            "day": pd.to_datetime([as_date(row[1]) for row in rows]).astype("datetime64[us]"),
            "grain": [str(row[2]) for row in rows],
        }
    )
    return frame


def start_batch(conn: Connection, *, kind: str, source: str, sha256: str) -> int:
    """Insert the import_batches row (counts filled in by finish_batch) and return its id."""
    result = conn.execute(
        import_batches.insert().values(kind=kind, source=source, content_sha256=sha256, loaded_at=dt.datetime.now())
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def finish_batch(conn: Connection, batch_id: int, *, loaded: int, rejected: int) -> None:
    conn.execute(
        update(import_batches)
        .where(import_batches.c.batch_id == batch_id)
        .values(rows_loaded=loaded, rows_rejected=rejected)
    )


def write_frames(conn: Connection, frames: list[tuple[Table, pd.DataFrame]]) -> dict[str, int]:
    """Insert each frame into its table, in order; returns rows written per table."""
    written: dict[str, int] = {}
    for table, frame in frames:
        written[table.name] = written.get(table.name, 0) + insert_frame(conn, table, frame)
    log.debug("wrote %s", written)
    return written
