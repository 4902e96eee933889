"""The runner's core on a real SQLite warehouse with real kernels: planning, parallel execution, retries, ledger."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import pytest
from sqlalchemy import Engine

from report_lib.errors import ConfigError, ReportNotFoundError
from report_lib.params import ParameterFiles
from report_lib.record import read_records
from report_lib.run import ledger
from report_lib.run.backends import LocalBackend
from report_lib.run.execute import ExecutionOptions, RetryPolicy
from report_lib.run.notebooks import NOTEBOOKS, NotebookSpec, parameters_for, select_notebooks
from report_lib.run.plan import RunRequest, plan_jobs, safe_name
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.loaders.daily import load_stores
from report_lib.warehouse.schema import stores

PROBE = Path(__file__).parent / "data" / "notebooks" / "runner_probe.ipynb"


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> NotebookSpec:
    spec = NotebookSpec("probe", "Probe", PROBE)
    monkeypatch.setitem(NOTEBOOKS, "probe", spec)
    return spec


@pytest.fixture
def store_table(sqlite_warehouse: Engine) -> pd.DataFrame:
    frame = pd.DataFrame({"code": ["S01", "BAD", "FLAKY"], "name": ["Main St", "Broken", "Flaky"]})
    with sqlite_warehouse.begin() as conn:
        insert_frame(conn, stores, frame)
    return load_stores(sqlite_warehouse)


def _options(sqlite_warehouse: Engine, **overrides: object) -> ExecutionOptions:
    values: dict[str, object] = {
        "database_url": sqlite_warehouse.url.render_as_string(),
        "batch": "test-batch",
        "formats": (),
        "retry": RetryPolicy(retries=2, base_delay=0.01),
        "execution_timeout": 60,
    }
    values.update(overrides)
    return ExecutionOptions(**values)  # type: ignore[arg-type]


def test_plan_injects_only_declared_parameters(probe: NotebookSpec, store_table: pd.DataFrame, tmp_path: Path) -> None:
    request = RunRequest(stores="S01", notebooks="probe", period="2024-03-04:2024-03-10")
    [job] = plan_jobs(request, stores=store_table, files=ParameterFiles(), output_dir=tmp_path)
    assert job.papermill_parameters == {
        "store": "S01",
        "store_name": "Main St",
        "period_start": "2024-03-04",
        "period_end": "2024-03-10",
        "period_label": "2024-W10",
    }
    assert job.output_dir == tmp_path / "2024-W10" / "S01"


@pytest.mark.parametrize(
    ("request_args", "error", "message"),
    [
        ({"stores": "S01,NOPE"}, ConfigError, "Unknown store.*NOPE.*known: BAD, FLAKY, S01"),
        ({"notebooks": "probe,nope"}, ReportNotFoundError, "No notebook named 'nope'; known: .*probe"),
        ({"period": "2024-13"}, ConfigError, "2024-13"),
        ({"period": "2024-03-10:2024-03-01"}, ConfigError, "before it starts"),
    ],
)
def test_plan_refuses_bad_requests(
    probe: NotebookSpec,
    store_table: pd.DataFrame,
    tmp_path: Path,
    request_args: dict[str, str],
    error: type[Exception],
    message: str,
) -> None:
    request = RunRequest(**{"stores": "all", "notebooks": "probe", "period": "2024-03", **request_args})
    with pytest.raises(error, match=message):
        plan_jobs(request, stores=store_table, files=ParameterFiles(), output_dir=tmp_path)


def test_stale_notebook_parameter_is_refused(tmp_path: Path) -> None:
    notebook = nbformat.read(PROBE, as_version=4)
    notebook.cells[1].source += "\nregion = 'North'"
    path = tmp_path / "stale.ipynb"
    nbformat.write(notebook, path)
    supplied = {"store": "S01", "store_name": "A", "period_start": "x", "period_end": "y", "period_label": "z"}
    with pytest.raises(ConfigError, match=r"declares parameters \['region'\] that the runner does not supply"):
        parameters_for(NotebookSpec("stale", "Stale", path), supplied)


def test_parallel_run_isolates_failures_retries_and_records_ledger(
    probe: NotebookSpec,
    store_table: pd.DataFrame,
    sqlite_warehouse: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flaky_dir = tmp_path / "flaky"
    flaky_dir.mkdir()
    monkeypatch.setenv("REPORT_TEST_FLAKY_DIR", str(flaky_dir))
    request = RunRequest(stores="all", notebooks="probe", period="2024-03-04:2024-03-10")
    jobs = plan_jobs(request, stores=store_table, files=ParameterFiles(), output_dir=tmp_path / "reports")
    seen = []
    results = LocalBackend().execute(jobs, _options(sqlite_warehouse), workers=2, on_result=seen.append)

    by_store = {r.store: r for r in results}
    assert len(seen) == 3
    assert (by_store["S01"].status, by_store["S01"].attempts) == ("ok", 1)
    assert (by_store["FLAKY"].status, by_store["FLAKY"].attempts) == ("ok", 2)  # transient: retried once
    assert (by_store["BAD"].status, by_store["BAD"].attempts) == ("failed", 1)  # bad data: not retried
    assert by_store["BAD"].error.startswith("DataValidationError: store BAD has no data")

    executed = nbformat.read(tmp_path / "reports" / "2024-W10" / "S01" / "probe.ipynb", as_version=4)
    assert read_records(executed) == {"store": "S01", "days": 7, "threads": "1"}  # BLAS pinned in the kernel
    failed_copy = nbformat.read(tmp_path / "reports" / "2024-W10" / "BAD" / "probe.ipynb", as_version=4)
    assert "papermill-error-cell-tag" in str(failed_copy)  # papermill's error banner kept
    assert not list((tmp_path / "reports").rglob("*.partial.ipynb"))

    runs = ledger.recent_runs(sqlite_warehouse)
    attempts = sorted(zip(runs.store_code, runs.attempt, runs.status, strict=True))
    assert attempts == [("BAD", 1, "failed"), ("FLAKY", 1, "failed"), ("FLAKY", 2, "ok"), ("S01", 1, "ok")]
    assert (runs.seconds > 0).all()
    assert runs.loc[runs.store_code == "S01", "parameters"].iloc[0]["period_label"] == "2024-W10"


def test_select_notebooks_keeps_registry_order() -> None:
    names = [spec.name for spec in select_notebooks("trends,store_overview")]
    assert names == ["store_overview", "trends"]


@pytest.mark.parametrize(("text", "expected"), [("S01", "S01"), ("../etc", "etc"), ("a/b c", "a_b_c"), ("..", "_")])
def test_safe_name_never_escapes(text: str, expected: str) -> None:
    assert safe_name(text) == expected


def test_retry_delay_is_bounded_exponential() -> None:
    policy = RetryPolicy(retries=5, base_delay=1.0, max_delay=5.0)
    delays = [policy.delay(attempt) for attempt in (1, 2, 3, 10) for _ in range(50)]
    assert all(0 <= d <= 5.0 for d in delays)
    assert max(policy.delay(1) for _ in range(50)) <= 1.0
