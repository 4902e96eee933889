"""The warehouse schema (SQLAlchemy Core), identical on SQLite and PostgreSQL.

Conventions:
- Timestamps are the store's local wall-clock time, as tills and exports record them; ``day`` is its date.
- Money is a float in the store's currency. Quantities are negative on return lines.
- Every loaded row carries the ``batch_id`` of the import (or demo generation) that wrote it: the incremental refresh
  recomputes exactly the (store, day) pairs touched by batches it has not seen yet.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

SCHEMA_VERSION = 1

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", DateTime, nullable=False),
)

stores = Table(
    "stores",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("region", String(100), nullable=False, server_default="Unassigned"),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("currency", String(3), nullable=False, server_default="USD"),
    Column("manager_emails", JSON, nullable=False, server_default=text("'[]'")),
    Column("opened_on", Date),
)

products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("category", String(100), nullable=False, server_default="Uncategorised"),
    Column("unit_cost", Float),
    Column("unit_price", Float),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("home_store", String(64), ForeignKey("stores.code")),
    Column("first_seen", Date),
)

import_batches = Table(
    "import_batches",
    metadata,
    Column("batch_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),  # demo | lines | daily
    Column("source", Text, nullable=False),  # file path, or "demo seed=..."
    Column("content_sha256", String(64), index=True),
    Column("loaded_at", DateTime, nullable=False),
    Column("rows_loaded", Integer, nullable=False, server_default="0"),
    Column("rows_rejected", Integer, nullable=False, server_default="0"),
)

orders = Table(
    "orders",
    metadata,
    Column("store_code", String(64), ForeignKey("stores.code"), primary_key=True),
    Column("order_id", String(64), primary_key=True),
    Column("ordered_at", DateTime, nullable=False),
    Column("customer_id", String(64)),
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False),
    Index("ix_orders_store_time", "store_code", "ordered_at"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("line_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("store_code", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("ordered_at", DateTime, nullable=False),
    Column("day", Date, nullable=False),
    Column("customer_id", String(64)),
    Column("sku", String(64), ForeignKey("products.sku"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Float, nullable=False),
    Column("unit_cost", Float),
    Column("discount", Float, nullable=False, server_default="0"),
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False),
    Index("ix_order_lines_store_day", "store_code", "day"),
    Index("ix_order_lines_store_time", "store_code", "ordered_at"),
    Index("ix_order_lines_batch", "batch_id"),
    Index("ix_order_lines_order", "store_code", "order_id"),
)

inventory_snapshots = Table(
    "inventory_snapshots",
    metadata,
    Column("store_code", String(64), ForeignKey("stores.code"), primary_key=True),
    Column("sku", String(64), ForeignKey("products.sku"), primary_key=True),
    Column("as_of", Date, primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reorder_point", Integer, nullable=False),
)

daily_metrics = Table(
    "daily_metrics",
    metadata,
    Column("store_code", String(64), ForeignKey("stores.code"), primary_key=True),
    Column("day", Date, primary_key=True),  # for weekly rows: the week's last day
    Column("grain", String(5), nullable=False, server_default="day"),  # day | week
    Column("revenue", Float),  # net of discounts and returns
    Column("orders", Integer),
    Column("units", Integer),  # net of returned units
    Column("customers", Integer),  # distinct identified customers
    Column("cost", Float),  # NULL unless every line of the day has a known cost
    Column("margin", Float),
    Column("returns", Float),  # value of returned goods, positive
    Column("return_units", Integer),
    Column("source", String(20), nullable=False),  # order_lines | import
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id")),
)

refresh_state = Table(
    "refresh_state",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("last_batch_id", Integer, nullable=False),
    Column("refreshed_at", DateTime, nullable=False),
)

planted_anomalies = Table(
    "planted_anomalies",
    metadata,
    Column("store_code", String(64), ForeignKey("stores.code"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("kind", String(20), nullable=False),  # spike | drop
    Column("factor", Float, nullable=False),  # multiplier applied to the day's orders
)

forecasts = Table(
    "forecasts",
    metadata,
    Column("store_code", String(64), ForeignKey("stores.code"), primary_key=True),
    Column("metric", String(40), primary_key=True),
    Column("made_at", DateTime, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("model", String(100), nullable=False),
    Column("mean", Float, nullable=False),
    Column("lo80", Float),
    Column("hi80", Float),
    Column("lo95", Float),
    Column("hi95", Float),
    Column("backtest_mase", Float),
    Column("naive_mase", Float),
    Column("fallback", Boolean, nullable=False, server_default="0"),
)

detected_anomalies = Table(
    "detected_anomalies",
    metadata,
    Column("store_code", String(64), ForeignKey("stores.code"), primary_key=True),
    Column("metric", String(40), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("method", String(40), primary_key=True),
    Column("value", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("direction", String(4), nullable=False),  # up | down
    Column("severity", String(10), nullable=False),
    Column("detected_at", DateTime, nullable=False),
)

report_runs = Table(
    "report_runs",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("batch", String(40), nullable=False, index=True),  # one `runner.py run` invocation
    Column("store_code", String(64), nullable=False),
    Column("notebook", String(64), nullable=False),
    Column("period", String(40), nullable=False),
    Column("parameters", JSON, nullable=False),  # what the notebook received; never secrets
    Column("attempt", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # running | ok | failed
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("seconds", Float),
    Column("error", Text),
    Column("outputs", JSON, nullable=False, server_default=text("'{}'")),  # format -> path
    Column("worker", String(100)),
    Index("ix_report_runs_store_started", "store_code", "started_at"),
)

email_deliveries = Table(
    "email_deliveries",
    metadata,
    Column("idempotency_key", String(200), primary_key=True),  # e.g. store-report:S01:2024-W10
    Column("kind", String(12), nullable=False),  # store | digest
    Column("recipients", JSON, nullable=False),
    Column("status", String(12), nullable=False),  # sent | failed | written (outbox)
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("message_id", String(300)),
    Column("last_error", Text),
    Column("updated_at", DateTime, nullable=False),
)

schedule_state = Table(
    "schedule_state",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("last_fire", DateTime),  # the scheduled time of the last run started
    Column("running_since", DateTime),  # set while a run is going: the claim that stops a second one
    Column("last_status", String(12)),
    Column("last_finished", DateTime),
)
