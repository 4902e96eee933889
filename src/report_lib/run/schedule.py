"""parameters/schedule.yaml: cron jobs of runs, which jobs are due, and a claim so none runs twice at once.

The same definitions feed the foreground scheduler (`runner.py schedule`) and Celery beat.

A claim (``running_since``) is held for the whole run. The foreground scheduler refreshes it every ``HEARTBEAT``;
a claim not refreshed for ``HEARTBEAT_STALE`` belongs to a scheduler that died mid-run (killed, machine restarted):
``take_over`` claims it again so the interrupted fire is re-run once (its emails are idempotent), and gives it up,
marked ``abandoned``, if that re-run dies too. Callers that do not refresh their claim (Celery) keep the long
``STALE_CLAIM``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine, and_, insert, or_, select, update

from report_lib.errors import ConfigError
from report_lib.params import _explain, _read_yaml
from report_lib.warehouse.schema import schedule_state

STALE_CLAIM = dt.timedelta(hours=6)  # a claim older than this is a crashed scheduler's; it may be taken over
HEARTBEAT = dt.timedelta(seconds=60)  # how often a running foreground scheduler refreshes its claim
HEARTBEAT_STALE = dt.timedelta(minutes=5)  # a refreshed claim this old is a dead scheduler's
RUNNING, RERUNNING, ABANDONED = "running", "rerunning", "abandoned"


class ScheduledJob(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    cron: str
    stores: str = "all"
    notebooks: str = "all"
    period: str = "last-week"
    send: bool = False
    formats: tuple[Literal["html", "pdf"], ...] | None = None
    workers: int | None = Field(None, ge=1, le=64)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (minute hour day month weekday, e.g. '0 6 * * MON')")
        return value

    def previous_fire(self, now: dt.datetime) -> dt.datetime:
        """The latest fire time at or before ``now``."""
        fire: dt.datetime = croniter(self.cron, now + dt.timedelta(seconds=1)).get_prev(dt.datetime)
        return fire

    def next_fire(self, after: dt.datetime) -> dt.datetime:
        fire: dt.datetime = croniter(self.cron, after).get_next(dt.datetime)
        return fire


def load_schedule(path: Path) -> list[ScheduledJob]:
    raw = _read_yaml(path)
    entries = raw.get("jobs") or {}
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"{path} has no jobs: expected a mapping 'jobs:' of job names to cron, stores, period ...")
    try:
        return [ScheduledJob(name=name, **(values or {})) for name, values in entries.items()]
    except (ValidationError, TypeError) as exc:
        detail = _explain(exc) if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"Invalid job in {path}: {detail}") from exc


def due_fire(job: ScheduledJob, *, last_fire: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
    """The fire time to run now, or None. Missed fires collapse into one: the latest, caught up once.

    A job never run before is due only from its first fire after it was scheduled (no surprise run on start).
    """
    latest = job.previous_fire(now)
    if last_fire is None or latest <= last_fire:
        return None
    return latest


def last_fire(engine: Engine, job: str) -> dt.datetime | None:
    with engine.connect() as conn:
        return conn.execute(select(schedule_state.c.last_fire).where(schedule_state.c.job == job)).scalar_one_or_none()


def initialise(engine: Engine, jobs: list[ScheduledJob], *, now: dt.datetime) -> None:
    """Record a starting point for jobs never seen, so the first run is the next fire, not a catch-up."""
    with engine.begin() as conn:
        known = set(conn.execute(select(schedule_state.c.job)).scalars())
        for job in jobs:
            if job.name not in known:
                conn.execute(insert(schedule_state).values(job=job.name, last_fire=job.previous_fire(now)))


def claim(
    engine: Engine, job: str, fire: dt.datetime, *, now: dt.datetime, stale_after: dt.timedelta = STALE_CLAIM
) -> bool:
    """Atomically mark ``job`` running for ``fire``; False if another scheduler holds it or already ran it."""
    with engine.begin() as conn:
        taken = conn.execute(
            update(schedule_state)
            .where(
                and_(
                    schedule_state.c.job == job,
                    or_(schedule_state.c.last_fire.is_(None), schedule_state.c.last_fire < fire),
                    or_(
                        schedule_state.c.running_since.is_(None),
                        schedule_state.c.running_since < now - stale_after,
                    ),
                )
            )
            .values(running_since=now, last_fire=fire, last_status=RUNNING)
        )
        return taken.rowcount == 1


def heartbeat(engine: Engine, job: str, *, now: dt.datetime) -> bool:
    """Refresh a held claim of ``job``; False when there is none (released, or taken over as stale)."""
    with engine.begin() as conn:
        refreshed = conn.execute(
            update(schedule_state)
            .where(and_(schedule_state.c.job == job, schedule_state.c.running_since.is_not(None)))
            .values(running_since=now)
        )
        return refreshed.rowcount == 1


def take_over(
    engine: Engine, job: str, *, now: dt.datetime, stale_after: dt.timedelta = HEARTBEAT_STALE
) -> dt.datetime | None:
    """The fire of a run interrupted mid-way (its claim went stale), claimed again to be re-run once; else None.

    A re-run that is interrupted as well is given up: the claim is released with status ``abandoned``, so the
    job's next fire runs normally instead of the same failing run being retried at every restart.
    """
    with engine.begin() as conn:
        row = conn.execute(
            select(schedule_state.c.last_fire, schedule_state.c.running_since, schedule_state.c.last_status).where(
                schedule_state.c.job == job
            )
        ).one_or_none()
        if row is None or row.running_since is None or row.running_since >= now - stale_after:
            return None
        again = row.last_status == RERUNNING
        values = {"running_since": None, "last_status": ABANDONED, "last_finished": now} if again else {}
        taken = conn.execute(
            update(schedule_state)
            .where(and_(schedule_state.c.job == job, schedule_state.c.running_since == row.running_since))
            .values(**(values or {"running_since": now, "last_status": RERUNNING}))
        )
    if taken.rowcount != 1 or again:
        return None
    fire: dt.datetime = row.last_fire
    return fire


def release(engine: Engine, job: str, *, status: str, now: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(schedule_state)
            .where(schedule_state.c.job == job)
            .values(running_since=None, last_status=status, last_finished=now)
        )
