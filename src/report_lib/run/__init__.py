"""Running notebooks per store: planning, execution with papermill, retries, the ledger, backends and delivery.

The only code that touches papermill.
"""
