"""The scheduler restarted mid-job: the interrupted run is re-run once, never twice at once, never lost.

First the claim semantics on SQLite and PostgreSQL with explicit times, then the real thing: `runner.py schedule`
in its own process, killed (SIGKILL, with its worker processes) while a notebook runs, and started again.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import Engine, select, update

from report_lib.cli.schedule import _claim_next, _heartbeat
from report_lib.run import ledger
from report_lib.run.schedule import (
    ABANDONED,
    HEARTBEAT,
    HEARTBEAT_STALE,
    RERUNNING,
    ScheduledJob,
    claim,
    due_fire,
    heartbeat,
    initialise,
    last_fire,
    release,
    take_over,
)
from report_lib.warehouse.schema import schedule_state, stores

HOURLY = ScheduledJob(name="hourly", cron="0 * * * *")
FIRE = dt.datetime(2024, 3, 4, 6)
MINUTE = dt.timedelta(minutes=1)


def _state(engine: Engine, job: str = "hourly") -> tuple[dt.datetime | None, dt.datetime | None, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(schedule_state.c.last_fire, schedule_state.c.running_since, schedule_state.c.last_status).where(
                schedule_state.c.job == job
            )
        ).one()
    return row.last_fire, row.running_since, row.last_status


@pytest.fixture
def claimed(warehouse: Engine) -> Engine:
    """The hourly job claimed for FIRE by a scheduler that then dies: it never refreshes nor releases its claim."""
    initialise(warehouse, [HOURLY], now=FIRE - MINUTE)
    assert claim(warehouse, "hourly", FIRE, now=FIRE, stale_after=HEARTBEAT_STALE)
    return warehouse


def test_a_claim_refreshed_by_its_heartbeat_is_never_taken_over(claimed: Engine) -> None:
    moment = FIRE
    for _ in range(30):  # a 30-minute run, refreshed every minute: never stale
        moment += HEARTBEAT
        assert heartbeat(claimed, "hourly", now=moment)
        assert take_over(claimed, "hourly", now=moment + HEARTBEAT_STALE - MINUTE) is None
        assert not claim(claimed, "hourly", FIRE + dt.timedelta(hours=1), now=moment, stale_after=HEARTBEAT_STALE)
    assert _state(claimed) == (FIRE, moment, "running")


def test_an_interrupted_run_is_rerun_once_after_a_restart(claimed: Engine) -> None:
    restart = FIRE + HEARTBEAT_STALE + MINUTE
    assert take_over(claimed, "hourly", now=FIRE + HEARTBEAT_STALE - MINUTE) is None  # may still be alive: wait
    assert take_over(claimed, "hourly", now=restart) == FIRE  # the same fire, to be run again
    assert _state(claimed) == (FIRE, restart, RERUNNING)
    assert take_over(claimed, "hourly", now=restart) is None  # a second scheduler restarting too: refused
    assert not claim(claimed, "hourly", FIRE, now=restart, stale_after=HEARTBEAT_STALE)
    release(claimed, "hourly", status="ok", now=restart + MINUTE)
    assert _state(claimed) == (FIRE, None, "ok")
    assert take_over(claimed, "hourly", now=restart + dt.timedelta(hours=9)) is None  # done: never a third time
    assert due_fire(HOURLY, last_fire=last_fire(claimed, "hourly"), now=restart + MINUTE) is None


def test_a_rerun_that_dies_as_well_is_abandoned_and_the_next_fire_runs(claimed: Engine) -> None:
    first_restart = FIRE + HEARTBEAT_STALE + MINUTE
    assert take_over(claimed, "hourly", now=first_restart) == FIRE
    second_restart = first_restart + HEARTBEAT_STALE + MINUTE
    assert take_over(claimed, "hourly", now=second_restart) is None
    assert _state(claimed) == (FIRE, None, ABANDONED)
    next_fire = FIRE + dt.timedelta(hours=1)
    assert due_fire(HOURLY, last_fire=last_fire(claimed, "hourly"), now=next_fire) == next_fire
    assert claim(claimed, "hourly", next_fire, now=next_fire, stale_after=HEARTBEAT_STALE)


def test_the_heartbeat_thread_refreshes_the_claim_while_the_run_goes_on(sqlite_warehouse: Engine) -> None:
    initialise(sqlite_warehouse, [HOURLY], now=FIRE - MINUTE)
    assert claim(sqlite_warehouse, "hourly", FIRE, now=FIRE)
    with _heartbeat(sqlite_warehouse, "hourly", every=0.05):
        time.sleep(0.5)
    refreshed = _state(sqlite_warehouse)[1]
    assert refreshed is not None and refreshed > dt.datetime.now() - dt.timedelta(seconds=5)


# --- the real scheduler process, killed mid-notebook -----------------------------------------------------------

SCHEDULER = """
import sys
from pathlib import Path
from report_lib.run.notebooks import NotebookSpec, register
register(NotebookSpec("waiter", "Waiter", Path(sys.argv[1])))
from report_lib.cli import main
sys.exit(main(["schedule", "--once", "--file", sys.argv[2]]))
"""

WAITER_CELL = """
import os, time
from pathlib import Path
from report_lib.record import record
folder = Path(os.environ["REPORT_FAULT_DIR"])
(folder / f"started-{os.getpid()}").touch()
deadline = time.monotonic() + 180
while not (folder / "release").exists() and time.monotonic() < deadline:
    time.sleep(0.1)
record("store", store)
"""


def marked_processes(marker: str) -> list[int]:
    """Processes (workers, kernels) whose environment carries ``marker``: the ones a test started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if f"REPORT_FAULT_MARKER={marker}".encode() in environ.split(b"\0"):
                found.append(int(entry.name))
    return found


def wait_until(condition: object, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.2)


@pytest.fixture
def scheduler_env(tmp_path: Path, sqlite_warehouse: Engine) -> Iterator[dict[str, str]]:
    """A scheduler's environment: the warehouse with store S01, a yearly job of the waiter notebook, no rendering."""
    with sqlite_warehouse.begin() as conn:
        conn.execute(stores.insert().values(code="S01", name="Main St"))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell('store = "S01"\nperiod_label = "x"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(textwrap.dedent(WAITER_CELL)),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "waiter.ipynb")
    parameters = tmp_path / "parameters"
    parameters.mkdir()
    (parameters / "defaults.yaml").write_text("formats: []\nretries: 0\nexecution_timeout: 300\n")
    (parameters / "schedule.yaml").write_text(
        "jobs:\n  yearly:\n    cron: '0 6 1 1 *'\n    stores: S01\n    notebooks: waiter\n"
        "    period: '2024-03-04:2024-03-10'\n    workers: 1\n"
    )
    (tmp_path / "fault").mkdir()
    marker = uuid.uuid4().hex
    env = {
        **os.environ,
        "REPORT_DATABASE_URL": sqlite_warehouse.url.render_as_string(),
        "REPORT_OUTPUT_DIR": str(tmp_path / "reports"),
        "REPORT_PARAMETERS_DIR": str(parameters),
        "REPORT_LOG_DIR": str(tmp_path / "logs"),
        "REPORT_FAULT_DIR": str(tmp_path / "fault"),
        "REPORT_FAULT_MARKER": marker,
    }
    yield env
    for pid in marked_processes(marker):  # whatever a failed test left behind
        os.kill(pid, signal.SIGKILL)


def _scheduler(env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            SCHEDULER,
            str(tmp_path / "waiter.ipynb"),
            env["REPORT_PARAMETERS_DIR"] + "/schedule.yaml",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its worker processes with it
    )


def _run_once(env: dict[str, str], tmp_path: Path) -> int:
    with _scheduler(env, tmp_path) as process:
        return process.wait(timeout=240)


def test_a_scheduler_killed_mid_notebook_reruns_that_run_once_after_restart(
    scheduler_env: dict[str, str], sqlite_warehouse: Engine, tmp_path: Path
) -> None:
    job = ScheduledJob(name="yearly", cron="0 6 1 1 *")
    initialise(sqlite_warehouse, [job], now=dt.datetime.now() - dt.timedelta(days=400))
    fire = job.previous_fire(dt.datetime.now())
    fault = tmp_path / "fault"
    starts = lambda: sorted(fault.glob("started-*"))  # noqa: E731

    with _scheduler(scheduler_env, tmp_path) as first:
        wait_until(lambda: starts(), seconds=180, what="the notebook to start under the first scheduler")
        os.killpg(first.pid, signal.SIGKILL)  # the scheduler and its worker processes, mid-notebook
        first.wait(timeout=30)
    assert _state(sqlite_warehouse, "yearly")[::2] == (fire, "running")
    # the orphaned kernel notices its parent is gone and exits by itself (ipykernel's parent poller)
    wait_until(lambda: not marked_processes(scheduler_env["REPORT_FAULT_MARKER"]), seconds=30, what="orphans to exit")

    assert _claim_next(sqlite_warehouse, job) is None  # a scheduler restarted at once: the claim may be alive

    claimed_at = _state(sqlite_warehouse, "yearly")[1]
    assert claimed_at is not None
    with sqlite_warehouse.begin() as conn:  # as if restarted ten minutes later: the claim is stale
        conn.execute(update(schedule_state).values(running_since=claimed_at - dt.timedelta(minutes=10)))
    (fault / "release").touch()
    assert _run_once(scheduler_env, tmp_path) == 0  # re-runs the interrupted fire, to the end
    assert len(starts()) == 2
    assert _state(sqlite_warehouse, "yearly") == (fire, None, "ok")
    runs = ledger.recent_runs(sqlite_warehouse)
    assert sorted(runs.status) == ["ok", "running"]  # the killed attempt stays 'running': see the report
    assert (tmp_path / "reports" / "2024-W10" / "S01" / "waiter.ipynb").exists()

    assert _claim_next(sqlite_warehouse, job) is None  # and never a third time
