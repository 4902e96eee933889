"""The real report notebooks on Celery workers, on the demo warehouse: `runner.py run --backend celery` (progress,
summary, portal, emails) gives the same records as the local backend, and a run fired by beat goes through a chord
whose callback publishes once every report has finished and frees the job's claim; `runner.py beat` loads the
schedule file."""

from __future__ import annotations

import shelve
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path

import nbformat
import pytest
from celery_fixtures import ROOT, require_redis, running_worker, settings_of, wait_for, worker_env
from sqlalchemy import Engine, select

from report_lib.record import read_records
from report_lib.run import ledger
from report_lib.run.batch import BatchOptions, run_batch
from report_lib.run.celery_app import SCHEDULED_RUN, CeleryTuning, CronSchedule, close_app, create_app
from report_lib.run.plan import RunRequest
from report_lib.warehouse.loaders.daily import load_stores
from report_lib.warehouse.schema import schedule_state


@pytest.fixture(scope="module")
def demo_worker(demo_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One worker (two processes) on the demo warehouse; the environment the submitting side uses too."""
    broker = require_redis()
    folder = tmp_path_factory.mktemp("celery-reports")
    env = worker_env(
        broker=broker,
        database_url=demo_engine.url.render_as_string(),
        output_dir=folder / "reports",
        queue=f"test-{uuid.uuid4().hex[:8]}",
        log_dir=folder / "logs",
        REPORT_OUTBOX_DIR=folder / "outbox",
        REPORT_PARAMETERS_DIR=ROOT / "parameters",
        REPORT_SMTP_URL="",
    )
    with running_worker(env, folder / "logs", name="reports", concurrency=2):
        yield env


def _overview_records(path: str) -> dict[str, object]:
    return read_records(nbformat.read(path, as_version=4))


def test_runner_run_on_celery_matches_the_local_backend(
    demo_worker: dict[str, str], demo_engine: Engine, tmp_path: Path
) -> None:
    env = demo_worker
    command = [sys.executable, "runner.py", "run", "--backend", "celery", "--stores", "S01,S02"]
    command += ["--notebooks", "store_overview", "--period", "last-week", "--formats", "html", "--send"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 2 reports succeeded, 0 failed" in done.stdout
    assert "S02/store_overview ok" in done.stderr or "S01/store_overview ok" in done.stderr  # the progress bar

    outputs = Path(env["REPORT_OUTPUT_DIR"])
    [portal] = outputs.glob("*/index.html")
    week = portal.parent.name
    assert "S01/store_overview.html" in portal.read_text() and "S02/store_overview.html" in portal.read_text()
    outbox = Path(env["REPORT_OUTBOX_DIR"]).rglob("*.eml")
    keys = sorted(str(message_from_bytes(p.read_bytes(), policy=policy.default)["X-Report-Key"]) for p in outbox)
    regions = set(load_stores(demo_engine, ["S01", "S02"])["region"])
    digests = [f"digest:{region}:{week}" for region in regions]
    assert keys == sorted([f"store-report:S01:{week}", f"store-report:S02:{week}", *digests])  # each once

    local = replace(settings_of(env), output_dir=tmp_path / "local", celery_broker_url=None)
    request = RunRequest(stores="S01", notebooks="store_overview", period="last-week")
    [mine] = run_batch(request, local, BatchOptions(workers=1, formats=("html",))).results
    assert mine.status == "ok", mine.error
    remote = outputs / week / "S01" / "store_overview.ipynb"
    assert _overview_records(str(remote)) == _overview_records(mine.outputs["ipynb"])
    assert _overview_records(str(remote))["kpis"]  # real numbers, not an empty page


def test_a_beat_fired_run_publishes_through_a_chord_once(demo_worker: dict[str, str], demo_engine: Engine) -> None:
    """What beat sends at a fire time, sent twice at once: one claims and runs, the other stands down; the chord's
    callback writes the portal once both reports finished, and frees the claim."""
    env = demo_worker
    name = f"test-{uuid.uuid4().hex[:6]}"
    job = {"name": name, "cron": "* * * * *", "stores": "S01", "notebooks": "kpis,trends", "period": "last-week",
           "formats": ["html"], "send": False, "workers": None}  # fmt: skip
    app = create_app(settings_of(env), CeleryTuning.from_env(env))  # the worker's queue
    try:
        first, second = (app.send_task(SCHEDULED_RUN, args=(job,)) for _ in range(2))
        answers = sorted([first.get(timeout=180), second.get(timeout=180)])
    finally:
        close_app(app)
    assert "already claimed" in answers[0] and "2 reports submitted" in answers[1], answers

    def released() -> tuple[object, ...] | None:
        with demo_engine.connect() as conn:
            row = conn.execute(
                select(schedule_state.c.running_since, schedule_state.c.last_status).where(schedule_state.c.job == name)
            ).one()
        return tuple(row) if row.running_since is None else None

    assert wait_for(released, timeout=300, what="the chord's callback") == (None, "ok")
    batch = answers[1].split("batch ")[1].split(",")[0]
    runs = ledger.recent_runs(demo_engine, limit=200)
    runs = runs[runs.batch == batch]
    assert sorted(zip(runs.store_code, runs.notebook, runs.status, strict=True)) == [
        ("S01", "kpis", "ok"),
        ("S01", "trends", "ok"),
    ]
    week = runs.period.iloc[0]
    portal = (Path(env["REPORT_OUTPUT_DIR"]) / week / "index.html").read_text()
    assert "S01/kpis.html" in portal and "S01/trends.html" in portal


def test_runner_beat_loads_schedule_yaml(demo_worker: dict[str, str], tmp_path: Path) -> None:
    """`runner.py beat` starts Celery beat with one entry per job of the schedule file, kept in its state file."""
    schedule_file = tmp_path / "schedule.yaml"
    schedule_file.write_text(
        "jobs:\n"
        "  weekly: {cron: '0 6 * * MON', stores: all, period: last-week, send: true}\n"
        "  nightly: {cron: '30 5 * * *', notebooks: kpis, period: yesterday, formats: [html]}\n"
    )
    state = tmp_path / "beat-state"
    command = [sys.executable, "runner.py", "beat", "--file", str(schedule_file), "--state-file", str(state)]
    log = tmp_path / "beat.log"
    with log.open("wb") as sink:
        beat = subprocess.Popen(command, cwd=ROOT, env=demo_worker, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "beat: Starting" in log.read_text(), timeout=90, what="beat")
    finally:
        beat.terminate()
        beat.wait(timeout=30)
    with shelve.open(str(state), flag="r") as saved:
        entries = saved["entries"]
    assert {name: (entry.task, entry.schedule) for name, entry in entries.items()} == {
        "weekly": (SCHEDULED_RUN, CronSchedule("0 6 * * MON")),
        "nightly": (SCHEDULED_RUN, CronSchedule("30 5 * * *")),
    }
    assert entries["nightly"].args[0]["notebooks"] == "kpis"
