"""The celery backend: configuration, the wire format, the beat schedule, and a real worker running the same jobs
as the local backend with the same results, records and ledger rows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from celery_fixtures import ROOT, require_redis, running_worker, settings_of, worker_env, write_probe
from sqlalchemy import Engine

from report_lib.errors import ConfigError, ReportNotFoundError
from report_lib.params import ParameterFiles
from report_lib.record import read_records
from report_lib.run import ledger
from report_lib.run.backends import LocalBackend, get_backend
from report_lib.run.celery_app import SCHEDULED_RUN, CeleryTuning, CronSchedule, beat_schedule, create_app
from report_lib.run.celery_backend import CeleryBackend
from report_lib.run.execute import ExecutionOptions, JobResult, RetryPolicy
from report_lib.run.health import _celery_workers
from report_lib.run.notebooks import NOTEBOOK_DIR, NOTEBOOKS, NotebookSpec
from report_lib.run.plan import Job, RunRequest, plan_jobs
from report_lib.run.schedule import load_schedule
from report_lib.run.tasks import decode_job, decode_options, encode_job, encode_options
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.engine import create_warehouse_engine, ensure_schema
from report_lib.warehouse.loaders.daily import load_stores
from report_lib.warehouse.schema import stores

PERIOD = "2024-03-04:2024-03-10"
ENGINE = "nbclient"  # a plain kernel per notebook: the probe needs none of the warm engine's imports


# --- configuration, wire format, registry, schedule: no Redis needed ------------------------------------------


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"REPORT_CELERY_SOFT_TIME_LIMIT": "10", "REPORT_CELERY_HARD_TIME_LIMIT": "10"}, "must exceed"),
        ({"REPORT_CELERY_SOFT_TIME_LIMIT": "soon"}, "expected a whole number"),
        ({"REPORT_CELERY_MAX_TASKS_PER_CHILD": "0"}, "MAX_TASKS_PER_CHILD must be >= 1"),
        ({"REPORT_CELERY_RESTORE_INTERVAL": "0"}, "RESTORE_INTERVAL is 0"),
    ],
)
def test_tuning_refuses_unsafe_limits(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CeleryTuning.from_env(environ)


def test_a_visibility_timeout_below_the_hard_limit_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    CeleryTuning.from_env({"REPORT_CELERY_SOFT_TIME_LIMIT": "50", "REPORT_CELERY_VISIBILITY_TIMEOUT": "110"})
    assert "may hand a task that is still running to a second worker" in caplog.text
    caplog.clear()
    CeleryTuning.from_env({"REPORT_CELERY_SOFT_TIME_LIMIT": "50"})
    assert caplog.text == ""


def test_tuning_derives_the_hard_limit_and_visibility_from_the_soft_limit() -> None:
    tuning = CeleryTuning.from_env({"REPORT_CELERY_SOFT_TIME_LIMIT": "100", "REPORT_CELERY_QUEUE": "q1"})
    assert (tuning.soft_time_limit, tuning.hard_time_limit, tuning.visibility_timeout) == (100, 160, 460)
    assert tuning.queue == "q1"
    app = create_app(settings_of({"REPORT_CELERY_BROKER_URL": "redis://:pw@h:6379/2"}), tuning)
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert (app.conf.task_soft_time_limit, app.conf.task_time_limit) == (100, 160)
    assert app.conf.broker_transport_options["visibility_timeout"] == 460
    assert app.conf.task_default_queue == "q1" and app.conf.accept_content == ["json"]


def test_no_broker_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="REPORT_CELERY_BROKER_URL is not set"):
        create_app(settings_of({}))


def test_celery_backend_registers_itself_when_asked_for() -> None:
    assert isinstance(get_backend("celery"), CeleryBackend)
    with pytest.raises(ReportNotFoundError, match="known: celery, local"):
        get_backend("nope")


def _job(tmp_path: Path, notebook: Path, monkeypatch: pytest.MonkeyPatch) -> Job:
    frame = pd.DataFrame({"code": ["S01"], "name": ["Main St"], "currency": ["EUR"]})
    monkeypatch.setitem(NOTEBOOKS, "kpis", NotebookSpec("kpis", "KPIs", notebook, needs_order_lines=True))
    request = RunRequest("S01", "kpis", PERIOD)
    [job] = plan_jobs(request, stores=frame, files=ParameterFiles(), output_dir=tmp_path)
    return job


def test_a_job_travels_as_json_and_comes_back_equal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _job(tmp_path, NOTEBOOK_DIR / "kpis.ipynb", monkeypatch)
    data = encode_job(job)
    assert data["notebook"]["path"] == "kpis.ipynb"  # relative: workers find it in their own checkout
    assert decode_job(data) == job
    write_probe(tmp_path / "probe.ipynb")
    elsewhere = _job(tmp_path, tmp_path / "probe.ipynb", monkeypatch)
    assert decode_job(encode_job(elsewhere)).notebook.path == tmp_path / "probe.ipynb"


def test_a_message_cannot_inject_other_notebook_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode_job(_job(tmp_path, NOTEBOOK_DIR / "kpis.ipynb", monkeypatch))
    data["papermill_parameters"] = {"store": "S01'; import os; os.remove('x')  #", "os.system('x') or x": 1}
    assert decode_job(data).papermill_parameters == {"store": "S01"}  # only known names, validated values


def test_options_carry_no_password_and_a_worker_refuses_another_warehouse() -> None:
    url = "postgresql+psycopg://reports:s3cret-pw@db1:5432/warehouse"
    options = ExecutionOptions(database_url=url, batch="b1", formats=("html",), retry=RetryPolicy(retries=1))
    data = encode_options(options)
    assert "s3cret-pw" not in str(data) and data["database_url"] == "postgresql:warehouse"
    same_db_other_host = "postgresql+psycopg://worker:other@10.0.0.5/warehouse"
    assert decode_options(data, database_url=same_db_other_host) == ExecutionOptions(
        database_url=same_db_other_host, batch="b1", formats=("html",), retry=RetryPolicy(retries=1)
    )
    with pytest.raises(ConfigError, match=r"planned on postgresql:warehouse.*same database on every machine"):
        decode_options(data, database_url="sqlite:////tmp/other.db")


@pytest.mark.parametrize(
    ("cron", "last_run", "now", "due", "next_in"),
    [
        ("0 6 * * MON", "2024-03-04 06:00", "2024-03-04 12:00", False, dt.timedelta(days=6, hours=18)),
        ("0 6 * * MON", "2024-03-04 06:00", "2024-03-11 06:00", True, dt.timedelta(days=7)),
        ("0 6 * * MON", "2024-03-04 06:00", "2024-03-20 09:00", True, dt.timedelta(days=4, hours=21)),  # caught up
        ("*/15 * * * *", "2024-03-04 06:14", "2024-03-04 06:14:30", False, dt.timedelta(seconds=30)),
    ],
)
def test_cron_schedule_is_due_in_local_time(
    cron: str, last_run: str, now: str, due: bool, next_in: dt.timedelta
) -> None:
    moment = dt.datetime.fromisoformat(now).astimezone()  # beat passes aware datetimes
    schedule = CronSchedule(cron, nowfun=lambda: moment)
    state = schedule.is_due(dt.datetime.fromisoformat(last_run).astimezone(dt.UTC))
    assert (state.is_due, state.next) == (due, next_in.total_seconds())


def test_beat_loads_the_same_schedule_file() -> None:
    jobs = load_schedule(ROOT / "parameters" / "schedule.yaml")
    entries = beat_schedule(jobs)
    assert set(entries) == {job.name for job in jobs}
    weekly = entries["weekly-store-reports"]
    assert weekly["task"] == SCHEDULED_RUN and weekly["schedule"] == CronSchedule("0 6 * * MON")
    assert weekly["args"][0]["send"] is True and weekly["args"][0]["period"] == "last-week"
    with pytest.raises(ConfigError, match="not a cron expression"):
        CronSchedule("every monday")


# --- a real worker: the same jobs as the local backend --------------------------------------------------------


@pytest.fixture(scope="module")
def probe_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Engine, Path]]:
    """A warehouse with the probe's stores, a probe notebook, and one worker (two processes) on its own queue."""
    broker = require_redis()
    folder = tmp_path_factory.mktemp("celery")
    engine = create_warehouse_engine(f"sqlite:///{folder / 'warehouse.db'}")
    ensure_schema(engine)
    with engine.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": ["S01", "BAD", "FLAKY"], "name": ["Main", "Bad", "Flaky"]}))
    (folder / "flaky-celery").mkdir()
    env = worker_env(
        broker=broker,
        database_url=engine.url.render_as_string(),
        output_dir=folder / "reports",
        queue=f"test-{uuid.uuid4().hex[:8]}",
        log_dir=folder / "logs",
        REPORT_TEST_FLAKY_DIR=folder / "flaky-celery",
    )
    probe = write_probe(folder / "probe.ipynb")
    with running_worker(env, folder / "logs", name="probe", concurrency=2):
        yield env, engine, probe
    engine.dispose()


def _plan(engine: Engine, probe: Path, output_dir: Path, monkeypatch: pytest.MonkeyPatch) -> list[Job]:
    monkeypatch.setitem(NOTEBOOKS, "probe", NotebookSpec("probe", "Probe", probe))
    request = RunRequest(stores="all", notebooks="probe", period=PERIOD)
    return plan_jobs(request, stores=load_stores(engine), files=ParameterFiles(), output_dir=output_dir)


def _options(env: dict[str, str], batch: str) -> ExecutionOptions:
    retry = RetryPolicy(retries=2, base_delay=0.01)
    return ExecutionOptions(
        env["REPORT_DATABASE_URL"], batch, formats=(), retry=retry, execution_timeout=120, engine=ENGINE
    )


def _outcome(results: list[JobResult]) -> dict[str, tuple[str, int, str | None]]:
    return {r.store: (r.status, r.attempts, r.error) for r in results}


def _records(results: list[JobResult]) -> dict[str, dict[str, object]]:
    return {r.store: read_records(nbformat.read(r.outputs["ipynb"], as_version=4)) for r in results if r.status == "ok"}


def _ledger(engine: Engine, batch: str) -> list[tuple[str, int, str]]:
    runs = ledger.recent_runs(engine, limit=500)
    runs = runs[runs.batch == batch]
    return sorted(zip(runs.store_code, runs.attempt, runs.status, strict=True))


def test_celery_runs_the_jobs_like_the_local_backend(
    probe_world: tuple[dict[str, str], Engine, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, engine, probe = probe_world
    (tmp_path / "flaky-local").mkdir()
    monkeypatch.setenv("REPORT_TEST_FLAKY_DIR", str(tmp_path / "flaky-local"))
    local = LocalBackend().execute(
        _plan(engine, probe, tmp_path / "local", monkeypatch),
        _options(env, "local"),
        workers=2,
        on_result=lambda r: None,
    )
    seen: list[JobResult] = []
    jobs = _plan(engine, probe, Path(env["REPORT_OUTPUT_DIR"]), monkeypatch)
    backend = CeleryBackend(settings_of(env), CeleryTuning.from_env(env))
    remote = backend.execute(jobs, _options(env, "celery"), workers=2, on_result=seen.append)

    assert sorted(r.key for r in seen) == sorted(job.key for job in jobs)  # progress: one call per finished task
    assert _outcome(remote) == _outcome(local)
    assert _outcome(remote) == {
        "S01": ("ok", 1, None),
        "FLAKY": ("ok", 2, None),  # retried inside the task, as locally
        "BAD": ("failed", 1, "DataValidationError: store BAD has no data (cell 3)"),
    }
    assert _records(remote) == _records(local)
    assert _records(remote)["S01"] == {"store": "S01", "days": 7, "threads": "1"}  # BLAS pinned in worker kernels
    assert all(Path(p).is_relative_to(env["REPORT_OUTPUT_DIR"]) for r in remote for p in r.outputs.values())
    assert _ledger(engine, "celery") == _ledger(engine, "local")  # the worker wrote the same ledger rows
    assert _ledger(engine, "celery") == [
        ("BAD", 1, "failed"),
        ("FLAKY", 1, "failed"),
        ("FLAKY", 2, "ok"),
        ("S01", 1, "ok"),
    ]


def test_a_worker_refuses_a_job_outside_its_output_directory(
    probe_world: tuple[dict[str, str], Engine, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, engine, probe = probe_world
    [job] = [j for j in _plan(engine, probe, tmp_path / "not-shared", monkeypatch) if j.store == "S01"]
    backend = CeleryBackend(settings_of(env), CeleryTuning.from_env(env))
    [result] = backend.execute([job], _options(env, "elsewhere"), workers=1, on_result=lambda r: None)
    assert result.status == "failed"
    assert "outside this worker's REPORT_OUTPUT_DIR" in (result.error or "")
    assert not (tmp_path / "not-shared").exists() and _ledger(engine, "elsewhere") == []


def test_health_names_the_live_workers(
    probe_world: tuple[dict[str, str], Engine, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, _, _ = probe_world
    monkeypatch.setenv("REPORT_CELERY_QUEUE", env["REPORT_CELERY_QUEUE"])
    assert (_celery_workers(settings_of(env)) or "").startswith(
        f"1 worker(s) answer on queue {env['REPORT_CELERY_QUEUE']!r}: probe-"
    )
    monkeypatch.setenv("REPORT_CELERY_QUEUE", "nobody-listens")
    with pytest.raises(ConfigError, match="No Celery worker consumes queue 'nobody-listens'"):
        _celery_workers(settings_of(env))
    assert _celery_workers(settings_of({})) is None  # not configured: skipped


def test_a_run_with_no_worker_on_the_queue_is_refused_before_anything_is_sent(
    probe_world: tuple[dict[str, str], Engine, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, engine, probe = probe_world
    jobs = _plan(engine, probe, Path(env["REPORT_OUTPUT_DIR"]), monkeypatch)
    backend = CeleryBackend(settings_of(env), CeleryTuning(queue="nobody-listens"))
    with pytest.raises(ConfigError, match=r"No Celery worker consumes queue 'nobody-listens'.*runner.py worker"):
        backend.execute(jobs, _options(env, "refused"), workers=1, on_result=lambda r: None)
    assert _ledger(engine, "refused") == []
