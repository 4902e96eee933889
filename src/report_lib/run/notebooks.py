"""The registry of report notebooks: a real extension point, so a dict with ``register()``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import papermill

from report_lib.errors import ConfigError, ReportNotFoundError

NOTEBOOK_DIR = Path(__file__).resolve().parents[3] / "notebooks"


@dataclass(frozen=True)
class NotebookSpec:
    name: str
    title: str
    path: Path
    needs_order_lines: bool = False  # aggregate-only stores get a clear message instead of these numbers


NOTEBOOKS: dict[str, NotebookSpec] = {}


def register(spec: NotebookSpec) -> NotebookSpec:
    NOTEBOOKS[spec.name] = spec
    return spec


def get_notebook(name: str) -> NotebookSpec:
    try:
        return NOTEBOOKS[name]
    except KeyError:
        raise ReportNotFoundError("notebook", name, NOTEBOOKS) from None


@cache
def declared_parameters(path: Path) -> frozenset[str]:
    """The names in the notebook's ``parameters`` cell."""
    if not path.exists():
        raise ConfigError(f"Notebook {path} does not exist; restore it from git or unregister it.")
    return frozenset(papermill.inspect_notebook(str(path)))


def parameters_for(spec: NotebookSpec, supplied: dict[str, object]) -> dict[str, object]:
    """The supplied values the notebook declares; a declared name the runner cannot supply is refused.

    papermill itself only warns about names a notebook does not declare; we decide before any kernel starts.
    """
    declared = declared_parameters(spec.path)
    unknown = sorted(declared - set(supplied))
    if unknown:
        raise ConfigError(
            f"Notebook {spec.name} declares parameters {unknown} that the runner does not supply; "
            f"supplied are: {', '.join(sorted(supplied))}. Rename them or add them to report_lib.params."
        )
    return {name: value for name, value in supplied.items() if name in declared}


def select_notebooks(selection: str) -> list[NotebookSpec]:
    """``all`` or a comma-separated list of names, in registry order (the overview first)."""
    if selection.strip() == "all":
        return list(NOTEBOOKS.values())
    names = [n.strip() for n in selection.split(",") if n.strip()]
    specs = [get_notebook(name) for name in dict.fromkeys(names)]
    order = list(NOTEBOOKS)
    return sorted(specs, key=lambda spec: order.index(spec.name))


for _name, _title, _needs_lines in [
    ("store_overview", "Store overview", False),
    ("kpis", "KPIs", False),
    ("trends", "Trends", False),
    ("forecast", "Forecast", False),
    ("anomalies", "Anomalies", False),
    ("segments", "Customer segments", True),
    ("recommendations", "Product recommendations", True),
    ("margins_stock", "Margins and stock", True),
]:
    register(NotebookSpec(_name, _title, NOTEBOOK_DIR / f"{_name}.ipynb", _needs_lines))
