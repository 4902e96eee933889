"""The only code that touches the database: schema, engine, bulk loads, generators, importers, refresh, loaders."""

from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema

__all__ = ["create_warehouse_engine", "ensure_schema"]
