"""The demo warehouse: a realistic, deterministic retail chain generated with numpy and bulk-loaded in one transaction.

What the data holds (later analyses and their tests rely on it):
- stores S01.. in 4 regions, with a size factor and a yearly trend (some grow, some decline);
- 192 products in 8 categories, a few loss leaders (cost above price), ~15% with one price change (lines carry the
  price in force that day);
- daily orders per store: Poisson around base x size x trend x weekday (weekend peak) x season (December peak; the
  garden season shifts the category mix) x holidays (Christmas Day closed) x chain-wide promotion weeks (discounts
  on one category), with ~5% day-level noise;
- baskets with the affinity groups of ``affinity_groups()`` / ``affinity_pairs()`` far above chance;
- 70% of orders by identified customers with personas (frequent high spenders, regular, occasional, new in the last
  60 days, lapsed after the first year), 30% anonymous (customer_id NULL);
- ~2% of undiscounted lines returned 1-10 days later as lines with negative quantity in return orders "R<store>-...";
- stock-out stretches without sales, an inventory snapshot as of the last day (~7% below reorder point, 1-3 at 0);
- 1-2 planted anomalies per store (order count x 2.5-3.5 or x 0.15-0.35), recorded in ``planted_anomalies``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from report_lib.errors import ConfigError, WarehouseError
from report_lib.warehouse import demo_catalog as cat
from report_lib.warehouse import schema
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.demo_calendar import build_calendar, build_pricing
from report_lib.warehouse.demo_catalog import affinity_groups, affinity_pairs, holidays
from report_lib.warehouse.demo_frames import StoreContext, StoreRows, first_day_of, store_rows

__all__ = ["DemoSummary", "affinity_groups", "affinity_pairs", "generate_demo", "holidays"]

log = logging.getLogger(__name__)

MAX_STORES = 500
MIN_DAYS, MAX_DAYS = 28, 3650
DEMO_KIND = "demo"
# every table that holds store data, children first; a demo run empties them all
DATA_TABLES = (
    schema.detected_anomalies,
    schema.forecasts,
    schema.planted_anomalies,
    schema.daily_metrics,
    schema.refresh_state,
    schema.inventory_snapshots,
    schema.order_lines,
    schema.orders,
    schema.customers,
    schema.import_batches,
    schema.products,
    schema.stores,
)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class DemoSummary:
    """What one generation wrote. ``orders`` and ``lines`` include the return orders and return lines."""

    stores: int
    products: int
    customers: int
    orders: int
    lines: int
    return_lines: int
    anomalies: int
    first_day: dt.date
    last_day: dt.date
    seconds: float
    batch_id: int


@dataclass(frozen=True)
class _Chain:
    """The chain-wide part of a generation: store and product rows, and what every store's history shares."""

    store_rows: pd.DataFrame
    product_rows: pd.DataFrame
    sizes: np.ndarray
    growth: np.ndarray
    context: StoreContext


def generate_demo(
    engine: Engine,
    *,
    stores: int = 10,
    days: int = 730,
    seed: int = 42,
    end: dt.date | None = None,
    scale: float = 1.0,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
) -> DemoSummary:
    """Replace the warehouse's data with a generated chain of ``stores`` stores over the ``days`` days ending ``end``.

    ``end`` defaults to yesterday. The same arguments (and ``end``) give identical rows. ``scale`` multiplies the
    order volume. Everything happens in one transaction: on any failure the warehouse is left as it was.
    ``on_progress(done_stores, total_stores)`` is called after each store is written.

    Raises:
        ConfigError: an argument is out of range.
        WarehouseError: the warehouse holds imported (non-demo) data and ``force`` is False.
    """
    _validate(stores=stores, days=days, scale=scale)
    last_day = end if end is not None else dt.date.today() - dt.timedelta(days=1)
    first_day = first_day_of(last_day, days)
    started = time.perf_counter()
    chain_seed, stores_seed = np.random.SeedSequence(seed).spawn(2)
    chain = _chain(stores, first_day, days, scale, np.random.default_rng(chain_seed))
    source = f"demo seed={seed} stores={stores} days={days} end={last_day.isoformat()} scale={scale:g}"
    with engine.begin() as conn:
        _clear(conn, force=force)
        batch_id = _insert_batch(conn, source)
        conn.execute(schema.stores.insert(), _records(chain.store_rows))  # JSON column: not for COPY
        insert_frame(conn, schema.products, chain.product_rows)
        totals = _write_stores(conn, chain, stores_seed.spawn(stores), batch_id, on_progress)
        batch = schema.import_batches.c.batch_id == batch_id
        conn.execute(schema.import_batches.update().where(batch).values(rows_loaded=totals[2]))
    customers, orders, lines, returned, anomalies = totals
    summary = DemoSummary(
        stores, len(chain.product_rows), customers, orders, lines, returned, anomalies,
        first_day, last_day, time.perf_counter() - started, batch_id,
    )  # fmt: skip
    log.info(
        "demo warehouse written: %d stores, %d order lines in %d orders, %d anomalies planted, %.1f s",
        stores, lines, orders, anomalies, summary.seconds,
    )  # fmt: skip
    return summary


def _write_stores(
    conn: Connection,
    chain: _Chain,
    seeds: list[np.random.SeedSequence],
    batch_id: int,
    on_progress: ProgressCallback | None,
) -> tuple[int, int, int, int, int]:
    """Generate and insert each store in turn (one store's rows in memory at a time).

    Returns the totals: customers, orders, lines, return lines, anomalies.
    """
    totals = np.zeros(5, dtype=np.int64)
    for number, store_seed in enumerate(seeds):
        rows = store_rows(
            str(chain.store_rows["code"].iloc[number]),
            size=float(chain.sizes[number]),
            growth=float(chain.growth[number]),
            context=chain.context,
            first_customer=int(totals[0]) + 1,
            rng=np.random.default_rng(store_seed),
        )
        totals += _insert_store(conn, rows, batch_id)
        if on_progress is not None:
            on_progress(number + 1, len(seeds))
    customers, orders, lines, returned, anomalies = (int(value) for value in totals)
    return customers, orders, lines, returned, anomalies


def _validate(*, stores: int, days: int, scale: float) -> None:
    if not 1 <= stores <= MAX_STORES:
        raise ConfigError(f"stores is {stores}; expected 1 to {MAX_STORES}. Pass a store count in that range.")
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ConfigError(
            f"days is {days}; expected {MIN_DAYS} to {MAX_DAYS} (four weeks to ten years). Pass a period in range."
        )
    if not (np.isfinite(scale) and 0 < scale <= 100):
        raise ConfigError(f"scale is {scale}; expected a number above 0 and at most 100 (1.0 = default volume).")


def _chain(stores: int, first_day: dt.date, days: int, scale: float, rng: np.random.Generator) -> _Chain:
    calendar = build_calendar(first_day, days, rng)
    catalogue, product_rows = cat.build_catalogue(rng)
    list_price, cost = product_rows["unit_price"].to_numpy(), product_rows["unit_cost"].to_numpy()
    pricing = build_pricing(list_price, cost, days, rng)
    store_rows_ = cat.store_table(stores, first_day=first_day, rng=rng)
    sizes, growth = cat.store_profiles(stores, rng)
    return _Chain(
        store_rows=store_rows_,
        product_rows=product_rows.assign(unit_price=pricing.new_price),  # the price in force on the last day
        sizes=sizes,
        growth=growth,
        context=StoreContext(calendar, catalogue, pricing, scale),
    )


def _clear(conn: Connection, *, force: bool) -> None:
    """Empty every data table, refusing when imported data would be lost (unless ``force``)."""
    batches = schema.import_batches
    imported = conn.execute(select(func.count()).select_from(batches).where(batches.c.kind != DEMO_KIND)).scalar_one()
    if imported and not force:
        raise WarehouseError(
            f"The warehouse at {conn.engine.url.render_as_string(hide_password=True)} holds imported data "
            f"({imported} import batch(es) of kind other than {DEMO_KIND!r}); the demo would replace it. "
            "Point REPORT_DATABASE_URL at another database for the demo, or pass --force (force=True) to delete "
            "everything and generate the demo anyway."
        )
    if imported:
        log.warning("deleting %d imported batch(es) and all their data for the demo (force)", imported)
    if conn.dialect.name == "postgresql":
        names = ", ".join(f'"{table.name}"' for table in DATA_TABLES)
        conn.exec_driver_sql(f"TRUNCATE {names}")
    else:
        for table in DATA_TABLES:
            conn.execute(table.delete())


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(key): value for key, value in row.items()} for row in frame.to_dict("records")]


def _insert_batch(conn: Connection, source: str) -> int:
    result = conn.execute(
        schema.import_batches.insert().values(kind=DEMO_KIND, source=source, loaded_at=dt.datetime.now(), rows_loaded=0)
    )
    key = result.inserted_primary_key
    if key is None:
        raise WarehouseError("The warehouse returned no batch_id for the new import_batches row.")
    return int(key[0])


def _insert_store(conn: Connection, rows: StoreRows, batch_id: int) -> np.ndarray:
    """Write one store's rows; returns the counts (customers, orders, lines, return lines, anomalies)."""
    insert_frame(conn, schema.customers, rows.customers)
    insert_frame(conn, schema.orders, rows.orders.assign(batch_id=batch_id))
    insert_frame(conn, schema.order_lines, rows.lines.assign(batch_id=batch_id))
    insert_frame(conn, schema.inventory_snapshots, rows.inventory)
    insert_frame(conn, schema.planted_anomalies, rows.anomalies)
    counts = (len(rows.customers), len(rows.orders), len(rows.lines), rows.return_lines, len(rows.anomalies))
    return np.array(counts, dtype=np.int64)
