"""``daily_metrics`` from order lines, computed in the database (one GROUP BY), incrementally.

Definitions, per (store_code, day), over every order line of that store and day:

- ``revenue`` = SUM(quantity * unit_price - discount): net of discounts; return lines (quantity < 0) reduce it.
- ``orders`` = COUNT(DISTINCT order_id) among lines with quantity > 0 (a pure return is not an order).
- ``units`` = SUM(quantity): net of returned units.
- ``customers`` = COUNT(DISTINCT customer_id): identified customers only (anonymous lines, NULL, are not counted).
- ``cost`` = SUM(quantity * unit_cost) only when every line of the day has a unit_cost
  (COUNT(unit_cost) = COUNT(*)), else NULL; ``margin`` = revenue - cost (NULL when cost is NULL).
- ``returns`` = -SUM(quantity * unit_price - discount) over lines with quantity < 0: a positive value, 0 when none.
- ``return_units`` = -SUM(quantity) over lines with quantity < 0: positive, 0 when none.
- ``batch_id`` = the highest import batch that contributed a line; ``grain`` = 'day'; ``source`` = 'order_lines'.

Rows with ``source = 'import'`` (daily or weekly totals imported as such) are never overwritten nor deleted: a
(store, day) that already has an imported row is skipped.

Incremental: ``refresh_state`` row 'daily_metrics' keeps the last batch id seen. The refresh first captures the
highest batch id present, then recomputes exactly the (store, day) pairs touched by lines of batches after the last
one seen and up to the captured one (late lines for old days included): it deletes their 'order_lines' rows and
inserts them again from an INSERT ... SELECT ... GROUP BY restricted to those pairs, all in one transaction, and
advances the state to the captured id. Capturing first means a batch committed meanwhile is left for the next run.
A first refresh (no state yet) and ``full=True`` rebuild every 'order_lines' row. Raw lines never reach Python.
On PostgreSQL a table lock on refresh_state makes concurrent refreshes take turns; readers are never blocked.

The touched pairs go into an analysed temporary table that the GROUP BY joins. Measured on 10M lines with a one-day
late batch: 0.03 s on SQLite and 0.05 s on PostgreSQL; a subquery join instead took 4 s on SQLite (its planner
scanned the whole store-day index) and the same 0.05 s on PostgreSQL. Every query here is written so that its plan
does not depend on fresh statistics (a demo load leaves them showing one batch); see ``_has_lines``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Date,
    Engine,
    Exists,
    FromClause,
    MetaData,
    Select,
    String,
    Table,
    and_,
    case,
    distinct,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.sql.expression import Executable

from report_lib.errors import WarehouseError
from report_lib.warehouse.schema import daily_metrics, order_lines, refresh_state, stores

log = logging.getLogger(__name__)

STATE_NAME = "daily_metrics"
SOURCE_LINES = "order_lines"
SOURCE_IMPORT = "import"
METRIC_NAMES = ("revenue", "orders", "units", "customers", "cost", "margin", "returns", "return_units")
INSERTED_COLUMNS = ("store_code", "day", *METRIC_NAMES, "batch_id", "source", "grain")

RefreshMode = Literal["full", "incremental", "up to date"]

# Per-session temporary table of the (store, day) pairs an incremental refresh recomputes.
_touched = Table(
    "refresh_touched_days",
    MetaData(),
    Column("store_code", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did.

    ``days_recomputed`` counts (store, day) pairs, those skipped for imported totals included; ``rows_written`` the
    'order_lines' rows inserted; ``batches`` the import batches with order lines new since the previous refresh
    (all of them on a first refresh).
    """

    mode: RefreshMode
    days_recomputed: int
    rows_written: int
    batches: int
    seconds: float

    def summary(self) -> str:
        if self.mode == "up to date":
            return f"daily_metrics up to date ({self.seconds:.2f} s)"
        skipped = self.days_recomputed - self.rows_written
        note = f", {skipped} skipped (imported totals)" if skipped else ""
        return (
            f"daily_metrics {self.mode} refresh: {self.days_recomputed} store-days recomputed from "
            f"{self.batches} new batch(es), {self.rows_written} rows written{note} in {self.seconds:.2f} s"
        )


def daily_aggregate_select(touched: FromClause | None = None) -> Select[Any]:
    """The GROUP BY over order lines that yields daily_metrics rows (labelled by column name).

    With ``touched`` (anything with store_code and day columns), only lines of those pairs are aggregated.
    """
    lines = order_lines.c
    value = lines.quantity * lines.unit_price - lines.discount
    is_return = lines.quantity < 0
    complete_cost = func.count(lines.unit_cost) == func.count()
    revenue = func.sum(value)
    cost = func.sum(lines.quantity * lines.unit_cost)
    query = select(
        lines.store_code,
        lines.day,
        revenue.label("revenue"),
        func.count(distinct(case((lines.quantity > 0, lines.order_id)))).label("orders"),
        func.sum(lines.quantity).label("units"),
        func.count(distinct(lines.customer_id)).label("customers"),
        case((complete_cost, cost)).label("cost"),
        case((complete_cost, revenue - cost)).label("margin"),
        func.sum(case((is_return, lines.discount - lines.quantity * lines.unit_price), else_=0.0)).label("returns"),
        func.sum(case((is_return, -lines.quantity), else_=0)).label("return_units"),
        func.max(lines.batch_id).label("batch_id"),
    ).group_by(lines.store_code, lines.day)
    if touched is not None:
        query = query.select_from(
            order_lines.join(touched, and_(touched.c.store_code == lines.store_code, touched.c.day == lines.day))
        )
    return query


def refresh_daily_metrics(engine: Engine, *, full: bool = False) -> RefreshResult:
    """Bring ``daily_metrics`` up to date with the order lines; ``full`` rebuilds every 'order_lines' row.

    Raises:
        WarehouseError: the schema is missing, or lines name a store absent from ``stores``.
    """
    started = time.perf_counter()
    try:
        with engine.begin() as conn:
            mode, days, rows, batches = _refresh(conn, full=full)
    except IntegrityError as exc:
        raise WarehouseError(_integrity_message(engine, exc)) from exc
    except (OperationalError, ProgrammingError) as exc:
        raise WarehouseError(
            f"Cannot refresh daily_metrics in {engine.url.render_as_string(hide_password=True)}: {exc.orig}. "
            "Expected a warehouse with the report_lib schema: run `runner.py demo` or `runner.py import` first."
        ) from exc
    result = RefreshResult(mode, days, rows, batches, time.perf_counter() - started)
    log.info("%s", result.summary())
    return result


def _refresh(conn: Connection, *, full: bool) -> tuple[RefreshMode, int, int, int]:
    if conn.dialect.name == "postgresql":  # one refresh at a time (SQLite serialises writers anyway)
        conn.execute(text(f"LOCK TABLE {refresh_state.name} IN SHARE ROW EXCLUSIVE MODE"))
    previous = conn.execute(
        select(refresh_state.c.last_batch_id).where(refresh_state.c.name == STATE_NAME)
    ).scalar_one_or_none()
    newest = conn.execute(select(func.max(order_lines.c.batch_id))).scalar_one_or_none()
    if full or previous is None:
        days, rows = _rebuild_all(conn)
        mode: RefreshMode = "full"
    elif newest is None or newest <= previous:
        return "up to date", 0, 0, 0
    else:
        days, rows = _rebuild_touched(conn, after=previous, upto=newest)
        mode = "incremental"
    batches = _count_batches(conn, after=previous or 0, upto=newest)
    _save_state(conn, newest if newest is not None else previous or 0)
    return mode, days, rows, batches


def _rebuild_all(conn: Connection) -> tuple[int, int]:
    conn.execute(daily_metrics.delete().where(daily_metrics.c.source == SOURCE_LINES))
    rows = _insert_aggregates(conn, daily_aggregate_select())
    imported, lines = daily_metrics.alias("imported"), order_lines.c
    with_lines = _has_lines(lines.day, lines.store_code == imported.c.store_code, lines.day == imported.c.day)
    skipped = conn.execute(
        select(func.count()).select_from(imported).where(imported.c.source == SOURCE_IMPORT, with_lines)
    ).scalar_one()
    return rows + int(skipped), rows


def _rebuild_touched(conn: Connection, *, after: int, upto: int) -> tuple[int, int]:
    lines = order_lines.c
    new_pairs = select(lines.store_code, lines.day).where(lines.batch_id > after, lines.batch_id <= upto).distinct()
    conn.execute(DropTable(_touched, if_exists=True))
    conn.execute(CreateTable(_touched))
    days = _rowcount(conn, _touched.insert().from_select(["store_code", "day"], new_pairs))
    # Unanalysed, the temp table looks huge to both planners (SQLite assumes a million rows and then scans all
    # order lines instead of probing their store-day index); its statistics cost well under a millisecond.
    conn.execute(text(f"ANALYZE {_touched.name}"))
    conn.execute(
        daily_metrics.delete().where(
            daily_metrics.c.source == SOURCE_LINES,
            tuple_(daily_metrics.c.store_code, daily_metrics.c.day).in_(select(_touched.c.store_code, _touched.c.day)),
        )
    )
    rows = _insert_aggregates(conn, daily_aggregate_select(_touched))
    conn.execute(DropTable(_touched))
    return days, rows


def _insert_aggregates(conn: Connection, aggregate: Select[Any]) -> int:
    """INSERT ... SELECT the aggregate rows, leaving out pairs that already have an imported row."""
    agg = aggregate.subquery("agg")
    imported = daily_metrics.alias("imported")
    has_import = _exists(
        imported.c.store_code == agg.c.store_code,
        imported.c.day == agg.c.day,
        imported.c.source == SOURCE_IMPORT,
    )
    rows = select(
        agg.c.store_code,
        agg.c.day,
        *[agg.c[name] for name in METRIC_NAMES],
        agg.c.batch_id,
        literal(SOURCE_LINES, String(20)),
        literal("day", String(5)),
    ).where(~has_import)
    return _rowcount(conn, daily_metrics.insert().from_select(list(INSERTED_COLUMNS), rows))


def _rowcount(conn: Connection, statement: Executable) -> int:
    """Rows an INSERT ... SELECT wrote (SQLAlchemy keeps INSERT row counts only when asked to)."""
    return int(conn.execute(statement.execution_options(preserve_rowcount=True)).rowcount)


def _exists(*conditions: ColumnElement[bool]) -> Exists:
    """EXISTS (SELECT 1 ...): with ``SELECT *`` SQLite may scan the table instead of probing a covering index."""
    return select(literal_column("1")).where(*conditions).exists()


def _has_lines(indexed: ColumnElement[Any], *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """Whether some order line meets ``conditions``: MIN(``indexed``) over them, which both databases answer with one
    probe of an index ordered by ``indexed`` whatever their statistics say.

    Not EXISTS: PostgreSQL flattens that into a semi-join and, when its statistics show few distinct batch ids (one
    demo batch), hashes a sequential scan of every order line (0.7 s at 1M lines; a LIMIT 1 probe can scan too).
    """
    return select(func.min(indexed)).where(*conditions).scalar_subquery().is_not(None)


def _count_batches(conn: Connection, *, after: int, upto: int | None) -> int:
    """Distinct batch ids of order lines in (after, upto], by a loose index scan: a recursive walk that asks the
    batch index for the next id, one probe per batch, whatever the statistics say (a semi-join of import_batches
    and order_lines hashed every line when the statistics showed a single demo batch).
    """
    if upto is None:
        return 0
    lines = order_lines.c
    walk = (
        select(func.min(lines.batch_id).label("batch_id"))
        .where(lines.batch_id > after)
        .cte("batch_walk", recursive=True)
    )
    following = select(func.min(lines.batch_id)).where(lines.batch_id > walk.c.batch_id).scalar_subquery()
    walk = walk.union_all(select(following).where(walk.c.batch_id < upto))
    return int(conn.execute(select(func.count(walk.c.batch_id)).where(walk.c.batch_id <= upto)).scalar_one())


def _save_state(conn: Connection, last_batch_id: int) -> None:
    values = {"last_batch_id": last_batch_id, "refreshed_at": dt.datetime.now()}
    updated = conn.execute(refresh_state.update().where(refresh_state.c.name == STATE_NAME).values(**values))
    if updated.rowcount == 0:
        conn.execute(refresh_state.insert().values(name=STATE_NAME, **values))


def _integrity_message(engine: Engine, exc: IntegrityError) -> str:
    with engine.connect() as conn:
        unknown = conn.execute(
            select(order_lines.c.store_code)
            .where(~_exists(stores.c.code == order_lines.c.store_code))
            .distinct()
            .limit(10)
        ).scalars()
        missing = sorted(unknown)
    if not missing:
        return f"Cannot write daily_metrics: {exc.orig}. Nothing was changed; check the rows the message names."
    return (
        f"Cannot write daily_metrics: order lines name stores missing from the stores table: {missing}. "
        "Every store_code of order_lines needs a row in stores; add the stores (e.g. re-run the import with its "
        "store list) and refresh again. Nothing was changed."
    )
