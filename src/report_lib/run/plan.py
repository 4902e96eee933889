"""From a request (stores, notebooks, period) to a validated list of jobs, before any kernel starts."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from report_lib.errors import ConfigError
from report_lib.params import NotebookParameters, ParameterFiles, validate_notebook_parameters
from report_lib.periods import Period, parse_period
from report_lib.run.notebooks import NotebookSpec, parameters_for, select_notebooks


@dataclass(frozen=True)
class Job:
    """One (store, notebook, period): what to execute and where its outputs go."""

    store: str
    notebook: NotebookSpec
    period: Period
    parameters: NotebookParameters
    papermill_parameters: dict[str, Any]  # the subset the notebook declares, as injected
    output_dir: Path  # reports/<period>/<store>/
    skip_reason: str | None = None  # set when the store's data cannot feed this notebook

    @property
    def key(self) -> str:
        return f"{self.store}/{self.notebook.name}/{self.period.label}"


@dataclass(frozen=True)
class RunRequest:
    stores: str = "all"  # "all" or "A,B"
    notebooks: str = "all"
    period: str = "last-week"
    as_of: dt.date | None = None
    comparison: str | None = None


def plan_jobs(
    request: RunRequest,
    *,
    stores: pd.DataFrame,
    files: ParameterFiles,
    output_dir: Path,
    with_order_lines: set[str] | None = None,
) -> list[Job]:
    """Every (store × notebook) job, with parameters validated; raises ConfigError naming what is wrong.

    Notebooks that need order lines are planned with a ``skip_reason`` for stores not in ``with_order_lines``
    (stores with imported totals only); None means every store has order lines.
    """
    period = parse_period(request.period, today=request.as_of or dt.date.today())
    specs = select_notebooks(request.notebooks)
    chosen = _select_stores(request.stores, stores)
    period_dir = output_dir / safe_name(period.label)
    jobs = []
    for store in _records(chosen):
        parameters = store_parameters(store, period, files, comparison=request.comparison)
        supplied = parameters.for_papermill()
        for spec in specs:
            injected = parameters_for(spec, supplied)
            skip = None
            if spec.needs_order_lines and with_order_lines is not None and store["code"] not in with_order_lines:
                skip = f"needs order lines; store {store['code']} has imported totals only"
            folder = period_dir / safe_name(store["code"])
            jobs.append(Job(store["code"], spec, period, parameters, injected, folder, skip))
    return jobs


def store_parameters(
    store: dict[str, Any], period: Period, files: ParameterFiles, *, comparison: str | None = None
) -> NotebookParameters:
    overrides = files.stores.get(store["code"])
    thresholds = overrides.thresholds.over(files.defaults.thresholds) if overrides else files.defaults.thresholds
    return validate_notebook_parameters(
        {
            "store": store["code"],
            "store_name": (overrides.name if overrides and overrides.name else None) or store["name"],
            "currency": (overrides.currency if overrides and overrides.currency else None) or store["currency"],
            "period_start": period.start,
            "period_end": period.end,
            "period_label": period.label,
            "comparison": comparison or files.defaults.comparison,
            **thresholds.model_dump(),
        }
    )


def _select_stores(selection: str, stores: pd.DataFrame) -> pd.DataFrame:
    if stores.empty:
        raise ConfigError("The warehouse has no stores; run `runner.py demo` or `runner.py import` first.")
    if selection.strip() == "all":
        return stores
    wanted = list(dict.fromkeys(s.strip() for s in selection.split(",") if s.strip()))
    known = set(stores["code"])
    unknown = [code for code in wanted if code not in known]
    if unknown:
        listed = ", ".join(sorted(known)[:20]) + (" ..." if len(known) > 20 else "")
        raise ConfigError(f"Unknown store(s) {', '.join(unknown)}; known: {listed}")
    return stores[stores["code"].isin(wanted)]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def safe_name(text: str) -> str:
    """A file-system-safe single path component (no separators, no dot-dot)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"
    return cleaned[:100]
