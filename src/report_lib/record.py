"""Values a notebook records for the code that runs it (the runner, emails, tests), like scrapbook's glue.

Inside a kernel, ``record(name, value)`` displays a JSON output of our own mimetype: nbconvert's HTML drops it (no
renderer knows it), papermill keeps it in the executed .ipynb, and ``read_records(nb)`` reads every value back.
Figures are recorded as plotly JSON with ``record_figure`` so emails can turn them into PNGs without re-running.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # kernels import this module: keep nbformat (and its jsonschema) out of their start-up
    import nbformat

RECORD_MIMETYPE = "application/vnd.report-lib.record+json"
FIGURE_PREFIX = "figure:"


def record(name: str, value: Any) -> None:
    """Display ``value`` (JSON-able; NaN becomes null) under ``name`` as a record output of the current cell."""
    from IPython.display import display  # only inside a kernel

    payload = {"name": name, "value": _jsonable(value)}
    display({RECORD_MIMETYPE: payload}, raw=True)  # type: ignore[no-untyped-call]


def record_figure(name: str, figure: Any) -> None:
    """Record a plotly figure (its JSON) so the email renderer can draw it as a PNG."""
    record(FIGURE_PREFIX + name, json.loads(figure.to_json()))


def read_records(notebook: nbformat.NotebookNode | Mapping[str, Any]) -> dict[str, Any]:
    """Every recorded value of an executed notebook, by name; a later record of the same name wins."""
    found: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(RECORD_MIMETYPE)
            if payload is not None:
                found[payload["name"]] = payload["value"]
    return found


def _jsonable(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):  # a list of row dicts
        return _jsonable(value.to_dict(orient="records"))
    if isinstance(value, pd.Series):  # index (dates as ISO strings) -> value
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # e.g. a display Note: its sentence


def _key(key: Any) -> str:
    return key.isoformat() if hasattr(key, "isoformat") else str(key)
