"""Report periods: inclusive date ranges, their comparison periods, and the period strings of the command line.

Dates are store-local calendar dates (the warehouse stores local wall-clock time), so no timezone arithmetic
happens here. Comparison rules:

- ``previous()``: the same number of days immediately before; whole calendar months compare with the preceding
  calendar months instead (March against February, not against the 31 days before March 1).
- ``same_last_year()``: whole calendar months shift to the same months a year earlier; every other period shifts
  by 52 weeks (364 days), so each day meets the same weekday last year, as retail comparisons do.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from report_lib.errors import ConfigError

WEEK_DAYS = 7
YEAR_SHIFT_DAYS = 364  # 52 weeks: weekdays line up
MAX_LAST_DAYS = 3660

ACCEPTED_FORMS = (
    "'yesterday'",
    "'last-week' (the last complete Monday-Sunday week)",
    "'last-month'",
    "'last-7-days', 'last-28-days' (any 'last-N-days')",
    "an ISO week such as '2024-W10'",
    "a month such as '2024-03'",
    "a day such as '2024-03-05'",
    "'START:END' with inclusive ISO dates such as '2024-03-01:2024-03-15'",
)

_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_LAST_DAYS = re.compile(r"^last-(\d+)-days?$")


@dataclass(frozen=True)
class Period:
    """An inclusive range of store-local dates with a human label (e.g. '2024-W10', '2024-03')."""

    start: dt.date
    end: dt.date
    label: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ConfigError(
                f"Period {self.label!r} ends ({self.end}) before it starts ({self.start}); "
                "expected start <= end (both inclusive)."
            )

    @property
    def days(self) -> int:
        """Number of days in the period, both ends included."""
        return (self.end - self.start).days + 1

    @property
    def whole_months(self) -> int:
        """How many whole calendar months the period is (0 when it is not a run of whole months)."""
        if self.start.day != 1 or self.end != _month_end(self.end):
            return 0
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    @property
    def is_iso_week(self) -> bool:
        return self.days == WEEK_DAYS and self.start.weekday() == 0

    @property
    def noun(self) -> str:
        """What the period is, for sentences: 'day', 'week', 'month', '3 months', '10 days'."""
        if self.days == 1:
            return "day"
        if self.is_iso_week:
            return "week"
        months = self.whole_months
        if months == 1:
            return "month"
        if months > 1:
            return f"{months} months"
        return f"{self.days} days"

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def previous(self) -> Period:
        """The comparison period just before: the same length, or the preceding calendar months."""
        months = self.whole_months
        if months:
            start = _add_months(self.start, -months)
            end = self.start - dt.timedelta(days=1)
            return Period(start, end, label_for(start, end))
        shift = dt.timedelta(days=self.days)
        return Period(self.start - shift, self.end - shift, label_for(self.start - shift, self.end - shift))

    def same_last_year(self) -> Period:
        """The same months a year earlier for whole months; otherwise 364 days earlier (same weekdays)."""
        months = self.whole_months
        if months:
            start = _add_months(self.start, -12)
            end = _month_end(_add_months(self.end.replace(day=1), -12))
            return Period(start, end, label_for(start, end))
        shift = dt.timedelta(days=YEAR_SHIFT_DAYS)
        return Period(self.start - shift, self.end - shift, label_for(self.start - shift, self.end - shift))

    def comparisons(self) -> dict[str, Period]:
        """This period and its two comparison periods, keyed 'current', 'previous', 'last_year'."""
        return {"current": self, "previous": self.previous(), "last_year": self.same_last_year()}

    def load_range(self) -> tuple[dt.date, dt.date]:
        """The inclusive day range to load so that the period and both comparisons are covered."""
        starts = [p.start for p in self.comparisons().values()]
        return min(starts), self.end


def label_for(start: dt.date, end: dt.date) -> str:
    """The canonical label of a range: '2024-03-05', '2024-W10', '2024-03', or '2024-03-01:2024-03-15'."""
    if start == end:
        return start.isoformat()
    if (end - start).days == WEEK_DAYS - 1 and start.weekday() == 0:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if start.day == 1 and end == _month_end(start):
        return f"{start.year}-{start.month:02d}"
    return f"{start.isoformat()}:{end.isoformat()}"


def parse_period(text: str, *, today: dt.date | None = None) -> Period:
    """The Period a command-line or parameter string names; relative forms count back from ``today``.

    Raises:
        ConfigError: the string is none of the accepted forms (the message lists them).
    """
    today = dt.date.today() if today is None else today
    cleaned = text.strip().lower()
    try:
        relative = _parse_relative(cleaned, today)
        if relative is not None:
            return relative
        absolute = _parse_absolute(cleaned.upper())
    except ConfigError:
        raise
    except (ValueError, OverflowError) as exc:  # impossible numbers, or dates past year 1 or 9999
        raise ConfigError(
            f"Period {text!r} (counted from {today}) is not a valid period: {exc}. {_accepted()}"
        ) from exc
    if absolute is None:
        raise ConfigError(f"Period {text!r} is not recognised. {_accepted()}")
    return absolute


def _parse_relative(text: str, today: dt.date) -> Period | None:
    yesterday = today - dt.timedelta(days=1)
    if text == "yesterday":
        return Period(yesterday, yesterday, label_for(yesterday, yesterday))
    if text == "last-week":
        end = today - dt.timedelta(days=today.weekday() + 1)
        start = end - dt.timedelta(days=WEEK_DAYS - 1)
        return Period(start, end, label_for(start, end))
    if text == "last-month":
        start = _add_months(today.replace(day=1), -1)
        end = _month_end(start)
        return Period(start, end, label_for(start, end))
    match = _LAST_DAYS.match(text)
    if match is None:
        return None
    count = int(match.group(1))
    if not 1 <= count <= MAX_LAST_DAYS:
        raise ConfigError(f"Period {text!r} asks for {count} days; expected 1 to {MAX_LAST_DAYS}. {_accepted()}")
    start = today - dt.timedelta(days=count)
    return Period(start, yesterday, label_for(start, yesterday))


def _parse_absolute(text: str) -> Period | None:
    """Absolute forms; raises ValueError for a recognised form with impossible numbers."""
    if match := _ISO_WEEK.match(text):
        start = dt.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        end = start + dt.timedelta(days=WEEK_DAYS - 1)
        return Period(start, end, label_for(start, end))
    if match := _MONTH.match(text):
        start = dt.date(int(match.group(1)), int(match.group(2)), 1)
        end = _month_end(start)
        return Period(start, end, label_for(start, end))
    if ":" in text:
        first, _, last = text.partition(":")
        start, end = dt.date.fromisoformat(first.strip()), dt.date.fromisoformat(last.strip())
        if end < start:
            raise ValueError(f"it ends ({end}) before it starts ({start})")
        return Period(start, end, label_for(start, end))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = dt.date.fromisoformat(text)
        return Period(day, day, label_for(day, day))
    return None


def _accepted() -> str:
    return "Accepted forms: " + "; ".join(ACCEPTED_FORMS) + "."


def _month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _add_months(day: dt.date, months: int) -> dt.date:
    """The first-of-month ``day`` moved by ``months`` (day must be the 1st)."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)
