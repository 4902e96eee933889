"""Importing real CSV exports into the warehouse: order lines, or store totals per day or per week.

One file is one transaction: stores (with ``create_stores``), products, customers, orders and order lines, or
daily_metrics rows (source 'import'), and the import_batches row all commit together or not at all.

Whole-file problems (empty, binary, no header, a ``--map`` to a missing column, a missing required field, every
row rejected) raise ImportRejectedError before anything is written. Row problems reject the row: it is counted
by reason and written, with its line number, column, found and expected values, to the reject file.

A byte-identical file imported before (same content_sha256) is reported and skipped. Overlapping exports are
safe: orders (lines) or store days (totals) already in the warehouse are rejected as "already in warehouse".
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from report_lib.errors import ImportRejectedError
from report_lib.warehouse import import_checks as checks
from report_lib.warehouse.import_daily import WEEK_DAYS, check_loaded_days, metric_rows, validate_daily
from report_lib.warehouse.import_fields import resolve_columns
from report_lib.warehouse.import_lines import check_loaded_orders, line_frames, validate_lines
from report_lib.warehouse.import_options import ImportOptions, Kind
from report_lib.warehouse.import_read import RawExport, read_export
from report_lib.warehouse.import_rejects import RowRejects, write_rejects
from report_lib.warehouse.import_write import (
    PreviousBatch,
    find_batch,
    finish_batch,
    known_stores,
    start_batch,
    write_frames,
)
from report_lib.warehouse.schema import daily_metrics, stores

log = logging.getLogger(__name__)

# bulk inserts use the driver's cursor, so its own exceptions arrive unwrapped
INTEGRITY_ERRORS = (IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)

REASON_HINTS = {
    "unknown store": "import with --create-stores, or create the stores first",
    "already in warehouse": "this data was imported before; nothing new to load",
    "unparseable date": "pass --date-format matching the file (e.g. %d-%m-%Y)",
    "non-numeric money": "check --decimal (use --decimal , for 12,50)",
    "missing required value": "check the --map columns",
}


class AllRowsRejectedError(ImportRejectedError):
    """Every row of the file was rejected; nothing was written, the reject file says why row by row."""

    def __init__(self, message: str, *, path: str, rejected: dict[str, int], rejects_file: Path | None) -> None:
        super().__init__(message, path=path)
        self.rejected = dict(rejected)
        self.rejects_file = rejects_file


@dataclass(frozen=True)
class ImportResult:
    """What one import did (or, for a dry run, would do)."""

    path: Path
    kind: Kind
    rows_read: int
    rows_loaded: int
    rejected: dict[str, int] = field(default_factory=dict)
    batch_id: int | None = None
    rejects_file: Path | None = None
    previous: PreviousBatch | None = None
    dry_run: bool = False
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: dict[str, str] = field(default_factory=dict)
    stores_created: tuple[str, ...] = ()
    written: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def already_imported(self) -> bool:
        return self.previous is not None


@dataclass(frozen=True)
class _Checked:
    rows: pd.DataFrame  # typed rows, one per raw row
    rejects: RowRejects
    columns: dict[str, str]


def import_lines(
    engine: Engine, path: Path | str, *, options: ImportOptions | None = None, dry_run: bool = False
) -> ImportResult:
    """Import a CSV of order lines (one row per order line); see the module docstring."""
    return import_file(engine, path, kind="lines", options=options, dry_run=dry_run)


def import_daily(
    engine: Engine, path: Path | str, *, options: ImportOptions | None = None, dry_run: bool = False
) -> ImportResult:
    """Import a CSV of store totals per day, or per week with ``options.grain == "week"``."""
    return import_file(engine, path, kind="daily", options=options, dry_run=dry_run)


def import_file(
    engine: Engine,
    path: Path | str,
    *,
    kind: Kind,
    options: ImportOptions | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Import ``path`` as ``kind`` ("lines" or "daily") in one transaction; nothing is written when it raises."""
    started = time.perf_counter()
    path = Path(path)
    options = options or ImportOptions()
    raw = read_export(path, delimiter=options.delimiter, encoding=options.encoding)
    columns = resolve_columns(
        kind, list(raw.frame.columns), options.mapping, path=path, has_default_store=options.default_store is not None
    )
    result = ImportResult(
        path=path,
        kind=kind,
        rows_read=len(raw.frame),
        rows_loaded=0,
        dry_run=dry_run,
        encoding=raw.encoding,
        delimiter=raw.delimiter,
        columns=columns,
    )
    with engine.connect() as conn:
        previous = find_batch(conn, raw.sha256)
    if previous is not None:
        log.info("%s was already imported as batch %d on %s", path, previous.batch_id, previous.loaded_at)
        return replace(result, previous=previous, seconds=time.perf_counter() - started)
    rows, rejects = (validate_lines if kind == "lines" else validate_daily)(raw.frame, columns, options)
    batch_id, created, written = _in_one_transaction(
        engine, raw, _Checked(rows, rejects, columns), kind=kind, options=options, dry_run=dry_run
    )
    rejects_file = _save_rejects(raw, rejects, options)
    loaded = int(rejects.ok.sum())
    log.info("%s: %d rows loaded, %d rejected (batch %s)", path, loaded, len(raw.frame) - loaded, batch_id)
    return replace(
        result,
        rows_loaded=loaded,
        rejected=rejects.counts(),
        batch_id=batch_id,
        rejects_file=rejects_file,
        stores_created=created,
        written=written,
        seconds=time.perf_counter() - started,
    )


def _in_one_transaction(
    engine: Engine, raw: RawExport, checked: _Checked, *, kind: Kind, options: ImportOptions, dry_run: bool
) -> tuple[int | None, tuple[str, ...], dict[str, int]]:
    try:
        with engine.begin() as conn:
            return _check_and_write(conn, raw, checked, kind=kind, options=options, dry_run=dry_run)
    except INTEGRITY_ERRORS as exc:
        raise ImportRejectedError(
            f"importing {raw.path} collided with rows written meanwhile (another import of overlapping data?): "
            f"{' '.join(str(getattr(exc, 'orig', exc)).split())}. Nothing was written; run the import again "
            "to reject the overlap",
            path=str(raw.path),
        ) from exc


def _check_and_write(
    conn: Connection, raw: RawExport, checked: _Checked, *, kind: Kind, options: ImportOptions, dry_run: bool
) -> tuple[int | None, tuple[str, ...], dict[str, int]]:
    """Warehouse checks (stores, overlap), then the writes; returns (batch id, stores created, rows per table)."""
    rows, rejects, columns = checked.rows, checked.rejects, checked.columns
    known = known_stores(conn)
    store_column = checks.store_column_name(columns)
    checks.check_stores(rejects, rows, known, column=store_column, create=options.create_stores)
    if kind == "lines":
        check_loaded_orders(conn, rows, rejects, order_column=columns["order_id"])
    else:
        span = WEEK_DAYS if options.grain == "week" else 1
        found = raw.frame[columns["date"]]
        check_loaded_days(conn, rows, rejects, span=span, column=columns["date"], found=found)
    accepted = rows.loc[rejects.ok]
    if accepted.empty:
        _refuse_all(raw, rejects, options)
    new = checks.new_stores(accepted, known, options)
    created = tuple(str(code) for code in new["code"])
    if dry_run:
        return None, created, {}
    batch_id = start_batch(conn, kind=kind, source=str(raw.path.resolve()), sha256=raw.sha256)
    if kind == "lines":
        frames = [(stores, new), *line_frames(conn, accepted, batch_id=batch_id)]
    else:
        frames = [(stores, new), (daily_metrics, metric_rows(accepted, grain=options.grain, batch_id=batch_id))]
    written = write_frames(conn, frames)
    finish_batch(conn, batch_id, loaded=len(accepted), rejected=len(rows) - len(accepted))
    return batch_id, created, written


def _refuse_all(raw: RawExport, rejects: RowRejects, options: ImportOptions) -> None:
    rejects_file = _save_rejects(raw, rejects, options)
    counts = rejects.counts()
    summary = ", ".join(f"{count} {reason}" for reason, count in counts.items())
    hints = "; ".join(f"{reason}: {REASON_HINTS[reason]}" for reason in counts if reason in REASON_HINTS)
    raise AllRowsRejectedError(
        f"every row of {raw.path} was rejected ({summary}); nothing was written. The rejected rows, with line, "
        f"column, found and expected values, are in {rejects_file}." + (f" Hints: {hints}" if hints else ""),
        path=str(raw.path),
        rejected=counts,
        rejects_file=rejects_file,
    )


def _save_rejects(raw: RawExport, rejects: RowRejects, options: ImportOptions) -> Path | None:
    if rejects.ok.all():
        return None
    return write_rejects(rejects.frame(raw.frame), options.rejects_file(raw.path))
