"""Faults inside a run, on real kernels and worker processes: a kernel killed mid-notebook, a worker process killed
mid-notebook, the output disk full while papermill writes the notebook and while the HTML is written.

Nothing lost (the others finish, the victim is retried), nothing half-written under a final name, and the ledger
ends with no attempt left 'running'. Processes are found by a marker in their environment (workers and kernels
inherit it), so each test also checks that it leaves none behind.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import Engine, text

from report_lib import errors
from report_lib.config import Settings
from report_lib.run import ledger
from report_lib.run.batch import BatchOptions, BatchResult, run_batch
from report_lib.run.notebooks import NOTEBOOKS, NotebookSpec
from report_lib.run.plan import RunRequest
from report_lib.warehouse.importers import AllRowsRejectedError
from report_lib.warehouse.schema import stores

PERIOD = "2024-03-04:2024-03-10"
OLD_REPORT = '{"old": "report, must survive"}'

FAULT_CELL = """
import os, signal, time
from pathlib import Path
from report_lib.record import record
folder = Path(os.environ["REPORT_FAULT_DIR"])
(folder / f"started-{store}-{os.getppid()}-{time.monotonic_ns()}").touch()
if store == "KERNEL" and not (folder / "kernel-killed").exists():
    (folder / "kernel-killed").touch()
    os.kill(os.getpid(), signal.SIGKILL)  # the kernel dies mid-notebook
deadline = time.monotonic() + 180
while store == "VICTIM" and not (folder / "release").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
record("store", store)
record("padding", "x" * int(os.environ.get("REPORT_FAULT_PADDING", "0")))
"""


def marked_processes(marker: str) -> list[int]:
    """Processes whose environment carries ``marker``: the workers and kernels this test started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if f"REPORT_FAULT_MARKER={marker}".encode() in environ.split(b"\0") and not _is_resource_tracker(entry):
                found.append(int(entry.name))
    return found


def _is_resource_tracker(process: Path) -> bool:
    """multiprocessing's resource tracker: one per test process, started by whichever test first spawns."""
    try:
        return b"resource_tracker" in (process / "cmdline").read_bytes()
    except OSError:
        return False


def wait_for(condition: Callable[[], object], *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.05)


@pytest.fixture
def fault_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell('store = "S01"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(textwrap.dedent(FAULT_CELL)),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "fault.ipynb")
    monkeypatch.setitem(NOTEBOOKS, "fault", NotebookSpec("fault", "Fault", tmp_path / "fault.ipynb"))
    folder = tmp_path / "fault"
    folder.mkdir()
    marker = uuid.uuid4().hex
    monkeypatch.setenv("REPORT_FAULT_DIR", str(folder))
    monkeypatch.setenv("REPORT_FAULT_MARKER", marker)
    yield folder
    leftovers = marked_processes(marker)
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20  # kernels notice a dead parent within about a second
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.2)
        leftovers = marked_processes(marker)
    assert leftovers == [], "the run left processes behind"


def _warehouse(engine: Engine, codes: list[str]) -> None:
    with engine.begin() as conn:
        conn.execute(stores.insert(), [{"code": code, "name": f"Store {code}"} for code in codes])


def _settings(engine: Engine, folder: Path) -> Settings:
    return Settings(
        database_url=engine.url.render_as_string(),
        output_dir=folder / "reports",
        parameters_dir=folder / "parameters",
        log_dir=folder / "logs",
    )


def _running_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM report_runs WHERE status = 'running'")).scalar_one())


@pytest.mark.parametrize(
    "error",
    [
        errors.OutputWriteError("disk full", path="/r/x.html", errno=28),
        errors.DeliveryError("refused", message_id="<m@x>", recipients=["a@x"], maybe_sent=True),
        errors.ReportNotFoundError("notebook", "nope", ["kpis", "trends"]),
        errors.AccessDeniedError("not yours", user="ann", stores=["S01"]),
        errors.DataValidationError("bad", missing_columns=["date"], details={"rows": 3}),
        errors.ImportRejectedError("empty", path="/x.csv"),
        AllRowsRejectedError("all bad", path="/x.csv", rejected={"bad date": 2}, rejects_file=Path("/r.csv")),
        errors.ConfigError("plain"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_travel_back_from_a_worker_process_with_their_fields(error: errors.ReportError) -> None:
    """A worker sends its exception back pickled; one that cannot be unpickled broke the whole process pool."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    if isinstance(error, OSError):
        assert copy.errno == error.errno


def test_a_kernel_killed_mid_notebook_is_retried_and_the_run_goes_on(
    sqlite_warehouse: Engine, fault_dir: Path, tmp_path: Path
) -> None:
    _warehouse(sqlite_warehouse, ["KERNEL", "S01"])
    options = BatchOptions(workers=1, formats=(), retries=1, retry_delay=0.1, execution_timeout=120)
    result = run_batch(RunRequest(notebooks="fault", period=PERIOD), _settings(sqlite_warehouse, tmp_path), options)
    by_store = {r.store: r for r in result.results}
    assert (by_store["KERNEL"].status, by_store["KERNEL"].attempts) == ("ok", 2), by_store["KERNEL"].error
    assert (by_store["S01"].status, by_store["S01"].attempts) == ("ok", 1)
    runs = ledger.recent_runs(sqlite_warehouse)
    kernel_runs = runs[runs.store_code == "KERNEL"].sort_values("attempt")
    assert list(kernel_runs.status) == ["failed", "ok"]
    assert "DeadKernelError" in kernel_runs.error.iloc[0] or "died" in kernel_runs.error.iloc[0].lower()
    executed = nbformat.read(tmp_path / "reports" / "2024-W10" / "KERNEL" / "fault.ipynb", as_version=4)
    assert "papermill-error-cell-tag" not in str(executed)  # the final file is the successful attempt's
    assert _running_rows(sqlite_warehouse) == 0


def test_a_worker_killed_mid_notebook_fails_no_other_store_and_the_victim_is_rerun(
    sqlite_warehouse: Engine, fault_dir: Path, tmp_path: Path
) -> None:
    _warehouse(sqlite_warehouse, ["S01", "S02", "S03", "S04", "VICTIM"])
    options = BatchOptions(workers=2, formats=(), retries=0, execution_timeout=120)
    done: list[BatchResult] = []
    request = RunRequest(notebooks="fault", period=PERIOD)
    runner = threading.Thread(
        target=lambda: done.append(run_batch(request, _settings(sqlite_warehouse, tmp_path), options))
    )
    runner.start()
    wait_for(lambda: list(fault_dir.glob("started-VICTIM-*")), seconds=180, what="the victim's notebook to start")
    worker = int(next(fault_dir.glob("started-VICTIM-*")).name.split("-")[2])
    (fault_dir / "release").touch()  # a re-run of the victim finishes
    os.kill(worker, signal.SIGKILL)
    runner.join(timeout=300)
    assert not runner.is_alive()
    [result] = done
    statuses = {r.store: r.status for r in result.results}
    assert statuses == dict.fromkeys(["S01", "S02", "S03", "S04", "VICTIM"], "ok"), [r.error for r in result.results]
    assert _running_rows(sqlite_warehouse) == 0


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted for the test (root only, as in CI's container)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _fill(disk: Path, *, leave: int) -> None:
    stats = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))


def _old_report(disk: Path) -> Path:
    final = disk / "reports" / "2024-W10" / "S01" / "fault.ipynb"
    final.parent.mkdir(parents=True)
    final.write_text(OLD_REPORT)
    return final


def test_a_full_disk_while_the_notebook_is_written_keeps_the_old_report(
    sqlite_warehouse: Engine, fault_dir: Path, tiny_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _warehouse(sqlite_warehouse, ["S01"])
    final = _old_report(tiny_disk)
    monkeypatch.setenv("REPORT_FAULT_PADDING", "60000")  # the executed notebook outgrows what is left
    _fill(tiny_disk, leave=24 * 1024)
    options = BatchOptions(workers=1, formats=(), retries=0, execution_timeout=120)
    result = run_batch(RunRequest(notebooks="fault", period=PERIOD), _settings(sqlite_warehouse, tiny_disk), options)
    [job] = result.results
    assert job.status == "failed" and job.error is not None and "No space left on device" in job.error
    assert final.read_text() == OLD_REPORT
    assert _running_rows(sqlite_warehouse) == 0


def test_a_full_disk_while_the_html_is_written_fails_the_job_clearly(
    sqlite_warehouse: Engine, fault_dir: Path, tiny_disk: Path
) -> None:
    _warehouse(sqlite_warehouse, ["S01"])
    _fill(tiny_disk, leave=40 * 1024)  # room for the notebook, not for its ~4.8 MB HTML page
    options = BatchOptions(workers=1, formats=("html",), retries=0, execution_timeout=120)
    result = run_batch(RunRequest(notebooks="fault", period=PERIOD), _settings(sqlite_warehouse, tiny_disk), options)
    [job] = result.results
    assert job.status == "failed" and job.error is not None
    assert "OutputWriteError" in job.error and "No space left on device" in job.error
    pages = [page.name for page in (tiny_disk / "reports").rglob("*.html")]
    assert pages == ["index.html"]  # no report page, only the portal that shows the failure
    assert not list((tiny_disk / "reports").rglob(".*.tmp"))
    assert _running_rows(sqlite_warehouse) == 0
