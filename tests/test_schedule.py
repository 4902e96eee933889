import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine

from report_lib.errors import ConfigError
from report_lib.run import schedule
from report_lib.run.schedule import ScheduledJob, claim, due_fire, initialise, last_fire, load_schedule, release

ROOT = Path(__file__).resolve().parent.parent
MONDAY_6AM = ScheduledJob(name="weekly", cron="0 6 * * MON")


def test_the_shipped_schedule_loads() -> None:
    jobs = {job.name: job for job in load_schedule(ROOT / "parameters" / "schedule.yaml")}
    assert jobs["weekly-store-reports"].send is True
    assert jobs["daily-kpis"].formats == ("html",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs:\n  x: {cron: 'every monday'}\n", "not a cron expression"),
        ("jobs:\n  x: {cron: '0 6 * * *', colour: red}\n", "colour: Extra inputs are not permitted"),
        ("jobs: {}\n", "has no jobs"),
    ],
)
def test_bad_schedules_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_schedule(path)


@pytest.mark.parametrize(
    ("last", "now", "expected"),
    [
        # ran at this Monday's fire; not due again until next Monday
        (dt.datetime(2024, 3, 4, 6), dt.datetime(2024, 3, 6, 12), None),
        # down over two Mondays: caught up once, for the latest fire only
        (dt.datetime(2024, 2, 19, 6), dt.datetime(2024, 3, 6, 12), dt.datetime(2024, 3, 4, 6)),
        # exactly at the fire time
        (dt.datetime(2024, 2, 26, 6), dt.datetime(2024, 3, 4, 6), dt.datetime(2024, 3, 4, 6)),
        # never initialised: nothing runs by surprise
        (None, dt.datetime(2024, 3, 6, 12), None),
    ],
)
def test_due_fire(last: dt.datetime | None, now: dt.datetime, expected: dt.datetime | None) -> None:
    assert due_fire(MONDAY_6AM, last_fire=last, now=now) == expected


def test_claim_is_exclusive_and_released(warehouse: Engine) -> None:
    start = dt.datetime(2024, 3, 1, 12)
    initialise(warehouse, [MONDAY_6AM], now=start)
    assert last_fire(warehouse, "weekly") == dt.datetime(2024, 2, 26, 6)
    fire = dt.datetime(2024, 3, 4, 6)
    now = dt.datetime(2024, 3, 4, 6, 0, 5)
    assert claim(warehouse, "weekly", fire, now=now) is True
    assert claim(warehouse, "weekly", fire, now=now) is False  # a second scheduler: refused
    release(warehouse, "weekly", status="ok", now=now)
    assert claim(warehouse, "weekly", fire, now=now) is False  # this fire already ran
    next_fire = dt.datetime(2024, 3, 11, 6)
    assert claim(warehouse, "weekly", next_fire, now=next_fire) is True


def test_a_crashed_schedulers_claim_is_taken_over(warehouse: Engine) -> None:
    initialise(warehouse, [MONDAY_6AM], now=dt.datetime(2024, 3, 1))
    fire = dt.datetime(2024, 3, 4, 6)
    assert claim(warehouse, "weekly", fire, now=fire)
    later_fire = dt.datetime(2024, 3, 11, 6)
    assert not claim(warehouse, "weekly", later_fire, now=fire + dt.timedelta(hours=1))
    assert claim(warehouse, "weekly", later_fire, now=later_fire + schedule.STALE_CLAIM)
