"""The Celery app that runs report jobs past one machine: Redis as broker and result backend, built from Settings.

Nothing connects at import: ``create_app(settings)`` builds an app for the command line and the backend, and the
module-level ``app`` (for ``celery -A report_lib.run.celery_app worker``) reads its configuration from the
environment only when Celery first needs it.

Delivery guarantees (see docs/celery.md): tasks are acknowledged late and rejected back to the queue when their
worker process dies, so a lost worker's task runs again; every task is idempotent (outputs are replaced atomically,
emails are claimed in the ledger). Redis hands an unacknowledged task to another worker after the visibility
timeout, which should therefore exceed the hard time limit, or a slow task may run twice at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery import Celery, schedules
from celery.signals import worker_process_init
from croniter import croniter
from kombu.utils.url import maybe_sanitize_url

from report_lib.config import Settings, load_settings
from report_lib.errors import ConfigError
from report_lib.run.schedule import ScheduledJob

log = logging.getLogger(__name__)

TASK_MODULES = ["report_lib.run.tasks", "report_lib.run.scheduled_tasks"]
RUN_REPORT = "report_lib.run_report"
SCHEDULED_RUN = "report_lib.scheduled_run"
PUBLISH_BATCH = "report_lib.publish_batch"
BATCH_FAILED = "report_lib.batch_failed"
PING_TIMEOUT = 1.0  # seconds workers have to answer a broadcast


@dataclass(frozen=True)
class CeleryTuning:
    """The Celery knobs a deployment may turn, from REPORT_CELERY_* variables (seconds unless said otherwise)."""

    queue: str = "reports"
    soft_time_limit: int = 1800  # one (store, notebook) with all its attempts; then it is stopped and failed
    hard_time_limit: int = 1860  # the worker process is killed; must leave the soft limit time to clean up
    visibility_timeout: int = 2160  # Redis redelivers a task unacknowledged this long (its worker was lost)
    restore_interval: int = 60  # how often a worker looks for such tasks
    max_tasks_per_child: int = 20  # a fresh worker process after this many tasks reclaims leaked kernels
    max_retries: int = 3  # Celery-level retries when the ledger or warehouse cannot be reached
    broker_wait: int = 300  # how long `run --backend celery` waits for an unreachable broker before failing

    def __post_init__(self) -> None:
        for name in ("soft_time_limit", "hard_time_limit", "visibility_timeout", "restore_interval"):
            if getattr(self, name) < 1:
                raise ConfigError(f"REPORT_CELERY_{name.upper()} is {getattr(self, name)}; expected seconds >= 1")
        if self.hard_time_limit <= self.soft_time_limit:
            raise ConfigError(
                f"REPORT_CELERY_HARD_TIME_LIMIT ({self.hard_time_limit} s) must exceed REPORT_CELERY_SOFT_TIME_LIMIT "
                f"({self.soft_time_limit} s): the soft limit stops a task cleanly, the hard limit is the backstop."
            )
        if self.visibility_timeout <= self.hard_time_limit:
            log.warning(
                "REPORT_CELERY_VISIBILITY_TIMEOUT (%d s) is not above the hard time limit (%d s): Redis may hand a "
                "task that is still running to a second worker (it is idempotent, but the work is done twice)",
                self.visibility_timeout,
                self.hard_time_limit,
            )
        if self.max_tasks_per_child < 1 or self.max_retries < 0 or self.broker_wait < 1:
            raise ConfigError(
                "REPORT_CELERY_MAX_TASKS_PER_CHILD must be >= 1, REPORT_CELERY_MAX_RETRIES >= 0 and "
                f"REPORT_CELERY_BROKER_WAIT >= 1; got {self.max_tasks_per_child}, {self.max_retries}, "
                f"{self.broker_wait}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CeleryTuning:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            raw = env.get(f"REPORT_CELERY_{name.upper()}", "").strip()
            if not raw:
                continue
            if name == "queue":
                values[name] = raw
                continue
            try:
                values[name] = int(raw)
            except ValueError:
                raise ConfigError(f"REPORT_CELERY_{name.upper()} is {raw!r}; expected a whole number") from None
        hard = values.setdefault("hard_time_limit", values.get("soft_time_limit", cls.soft_time_limit) + 60)
        values.setdefault("visibility_timeout", hard + 300)
        return cls(**values)


def broker_url(settings: Settings) -> str:
    if not settings.celery_broker_url:
        raise ConfigError(
            "REPORT_CELERY_BROKER_URL is not set; the celery backend, `runner.py worker` and `runner.py beat` "
            "need a Redis URL such as redis://127.0.0.1:6379/0 (see docs/celery.md)."
        )
    return settings.celery_broker_url


def celery_config(url: str, tuning: CeleryTuning) -> dict[str, Any]:
    """The app's configuration: Redis for both broker and results, JSON messages, late acknowledgement."""
    return {
        "broker_url": url,
        "result_backend": url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": tuning.queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_track_started": True,
        "task_soft_time_limit": tuning.soft_time_limit,
        "task_time_limit": tuning.hard_time_limit,
        "worker_prefetch_multiplier": 1,  # a worker holds only the tasks it runs; others stay free for other workers
        "worker_max_tasks_per_child": tuning.max_tasks_per_child,
        "worker_hijack_root_logger": False,  # our logging (redacted, JSON file) stays in place
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": tuning.visibility_timeout,
            "unacked_restore_interval": tuning.restore_interval,
            "unacked_restore_throttle": 1,
        },
        "result_expires": dt.timedelta(days=7),
        "result_extended": True,  # task name and arguments kept with the result, for Flower and `inspect`
    }


def create_app(settings: Settings | None = None, tuning: CeleryTuning | None = None) -> Celery:
    """A Celery app for ``settings`` (default: the environment); raises ConfigError without a broker URL."""
    settings = settings or load_settings()
    app = Celery("report_lib", include=TASK_MODULES, set_as_current=False)
    app.conf.update(celery_config(broker_url(settings), tuning or CeleryTuning.from_env()))
    return app


def require_workers(app: Celery, queue: str, *, first: bool = False) -> list[str]:
    """The workers consuming ``queue``; ConfigError naming the broker when none answers.

    A broadcast waits its whole timeout, not knowing how many workers there are. With ``first`` it stops at the
    first answer from a worker on ``queue`` (milliseconds), and only a queue nobody consumes costs the timeout.
    """
    replies = _first_answers(app, queue) if first else app.control.inspect(timeout=PING_TIMEOUT).active_queues()
    consuming = _consuming(replies or {}, queue)
    if not consuming:
        others = f" (workers on other queues: {', '.join(sorted(replies or {}))})" if replies else ""
        raise ConfigError(
            f"No Celery worker consumes queue {queue!r} on {maybe_sanitize_url(app.conf.broker_url)}{others}. "
            "Start one with `runner.py worker` (same REPORT_CELERY_BROKER_URL and REPORT_CELERY_QUEUE), "
            "or run with --backend local."
        )
    return consuming


def _first_answers(app: Celery, queue: str, *, most: int = 16) -> dict[str, Any]:
    """Broadcasts waiting for 1, 2, ... answers, until one comes from a worker on ``queue`` or fewer answer."""
    replies: dict[str, Any] = {}
    for limit in range(1, most + 1):
        replies = app.control.inspect(timeout=PING_TIMEOUT, limit=limit).active_queues() or {}
        if _consuming(replies, queue) or len(replies) < limit:
            return replies
    return app.control.inspect(timeout=PING_TIMEOUT).active_queues() or {}


def _consuming(replies: dict[str, Any], queue: str) -> list[str]:
    return sorted(name for name, queues in replies.items() if any(q.get("name") == queue for q in queues))


def close_app(app: Celery) -> None:
    """Close the app's broker connections and its result backend's (``Celery.close`` leaves the latter open)."""
    backend = app.backend
    try:
        consumer = getattr(backend, "result_consumer", None)
        if consumer is not None:
            consumer.stop()
        client = getattr(backend, "client", None)
        if client is not None:
            client.connection_pool.disconnect()
    except Exception as exc:  # closing is best effort: a broker that is gone has nothing left to close
        log.debug("closing the result backend: %s", exc)
    app.close()


def _lazy_config() -> dict[str, Any]:
    return celery_config(broker_url(load_settings()), CeleryTuning.from_env())


app = Celery("report_lib", include=TASK_MODULES)
app.add_defaults(_lazy_config)  # read when Celery first needs the configuration, never at import


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _pin_threads_in_worker_process(**_: Any) -> None:
    """One BLAS/OpenMP thread per worker process and its kernels (oversubscription made fits 10x slower)."""
    from report_lib.run.execute import pin_threads  # papermill loads in workers, not where the app is only built

    pin_threads()


class CronSchedule(schedules.BaseSchedule):  # type: ignore[misc]
    """A cron expression of parameters/schedule.yaml as Celery beat sees it: read by croniter in the machine's
    local time, exactly as `runner.py schedule` reads it. A fire missed while beat was down runs once on restart."""

    def __init__(self, cron: str, nowfun: Any = None, app: Celery | None = None) -> None:
        if not croniter.is_valid(cron):
            raise ConfigError(f"{cron!r} is not a cron expression (minute hour day month weekday)")
        self.cron = cron
        super().__init__(nowfun=nowfun, app=app)

    def next_fire(self, after: dt.datetime) -> dt.datetime:
        fire: dt.datetime = croniter(self.cron, _local(after)).get_next(dt.datetime)
        return fire

    def remaining_estimate(self, last_run_at: dt.datetime) -> dt.timedelta:
        return self.next_fire(last_run_at) - _local(self.now())

    def is_due(self, last_run_at: dt.datetime) -> schedules.schedstate:
        now = _local(self.now())
        if self.next_fire(last_run_at) <= now:
            return schedules.schedstate(True, (self.next_fire(now) - now).total_seconds())
        return schedules.schedstate(False, (self.next_fire(last_run_at) - now).total_seconds())

    def __reduce__(self) -> tuple[type[CronSchedule], tuple[str]]:
        return self.__class__, (self.cron,)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronSchedule) and other.cron == self.cron

    def __hash__(self) -> int:
        return hash(self.cron)

    def __repr__(self) -> str:
        return f"<cron {self.cron}>"


def _local(moment: dt.datetime) -> dt.datetime:
    """A naive local time (croniter's and schedule.yaml's frame) from beat's aware or naive datetimes."""
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment


def beat_schedule(jobs: list[ScheduledJob]) -> dict[str, dict[str, Any]]:
    """Celery beat entries for the jobs of schedule.yaml: each sends its own definition to `scheduled_run`."""
    return {
        job.name: {"task": SCHEDULED_RUN, "schedule": CronSchedule(job.cron), "args": (job.model_dump(mode="json"),)}
        for job in jobs
    }
