import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from report_lib.errors import ConfigError
from report_lib.periods import Period, label_for, parse_period

D = dt.date
TODAY = D(2024, 3, 13)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "start", "end", "label"),
    [
        ("yesterday", D(2024, 3, 12), D(2024, 3, 12), "2024-03-12"),
        ("last-week", D(2024, 3, 4), D(2024, 3, 10), "2024-W10"),
        ("last-month", D(2024, 2, 1), D(2024, 2, 29), "2024-02"),
        ("last-7-days", D(2024, 3, 6), D(2024, 3, 12), "2024-03-06:2024-03-12"),
        ("last-28-days", D(2024, 2, 14), D(2024, 3, 12), "2024-02-14:2024-03-12"),
        ("2024-W10", D(2024, 3, 4), D(2024, 3, 10), "2024-W10"),
        ("2024-w01", D(2024, 1, 1), D(2024, 1, 7), "2024-W01"),
        ("2020-W53", D(2020, 12, 28), D(2021, 1, 3), "2020-W53"),
        ("2024-03", D(2024, 3, 1), D(2024, 3, 31), "2024-03"),
        ("2023-02", D(2023, 2, 1), D(2023, 2, 28), "2023-02"),
        (" 2024-03-01:2024-03-15 ", D(2024, 3, 1), D(2024, 3, 15), "2024-03-01:2024-03-15"),
        ("2024-03-04:2024-03-10", D(2024, 3, 4), D(2024, 3, 10), "2024-W10"),
        ("2024-03-05", D(2024, 3, 5), D(2024, 3, 5), "2024-03-05"),
    ],
)
def test_parse_period_forms(text: str, start: dt.date, end: dt.date, label: str) -> None:
    assert parse_period(text, today=TODAY) == Period(start, end, label)


@pytest.mark.parametrize(
    ("today", "start", "end"),
    [
        (D(2024, 3, 11), D(2024, 3, 4), D(2024, 3, 10)),  # Monday: the week that just ended
        (D(2024, 3, 10), D(2024, 2, 26), D(2024, 3, 3)),  # Sunday: today's week is not complete
        (D(2024, 3, 16), D(2024, 3, 4), D(2024, 3, 10)),  # Saturday
    ],
)
def test_last_week_is_the_last_complete_monday_to_sunday(today: dt.date, start: dt.date, end: dt.date) -> None:
    period = parse_period("last-week", today=today)
    assert (period.start, period.end) == (start, end)
    assert period.start.weekday() == 0 and period.end.weekday() == 6


def test_last_month_in_january_is_last_december() -> None:
    assert parse_period("last-month", today=D(2024, 1, 15)) == Period(D(2023, 12, 1), D(2023, 12, 31), "2023-12")


@pytest.mark.parametrize(
    "text", ["last-year", "2024-W54", "2023-W53", "2024-13", "2024-03-32", "2024-03-10:2024-03-01", "", "last-0-days"]
)
def test_bad_periods_raise_config_error_listing_forms(text: str) -> None:
    with pytest.raises(ConfigError, match="Accepted forms: 'yesterday'"):
        parse_period(text, today=TODAY)


def test_period_refuses_end_before_start() -> None:
    with pytest.raises(ConfigError, match="before it starts"):
        Period(D(2024, 3, 2), D(2024, 3, 1), "x")


@pytest.mark.parametrize(
    ("period", "previous", "last_year"),
    [
        # ISO week: the week before; 52 weeks earlier (same weekdays)
        (("2024-03-04", "2024-03-10"), ("2024-02-26", "2024-03-03"), ("2023-03-06", "2023-03-12")),
        # a day: the day before; 364 days earlier, a Tuesday like 2024-03-12
        (("2024-03-12", "2024-03-12"), ("2024-03-11", "2024-03-11"), ("2023-03-14", "2023-03-14")),
        # a month: the previous calendar month; the same month last year (leap February)
        (("2024-03-01", "2024-03-31"), ("2024-02-01", "2024-02-29"), ("2023-03-01", "2023-03-31")),
        (("2024-02-01", "2024-02-29"), ("2024-01-01", "2024-01-31"), ("2023-02-01", "2023-02-28")),
        # a quarter: the previous quarter
        (("2024-01-01", "2024-03-31"), ("2023-10-01", "2023-12-31"), ("2023-01-01", "2023-03-31")),
        # an arbitrary 10 days: the 10 days before
        (("2024-03-06", "2024-03-15"), ("2024-02-25", "2024-03-05"), ("2023-03-08", "2023-03-17")),
    ],
)
def test_comparison_periods(period: tuple[str, str], previous: tuple[str, str], last_year: tuple[str, str]) -> None:
    def make(pair: tuple[str, str]) -> Period:
        start, end = D.fromisoformat(pair[0]), D.fromisoformat(pair[1])
        return Period(start, end, label_for(start, end))

    current = make(period)
    assert current.previous() == make(previous)
    assert current.same_last_year() == make(last_year)
    if current.whole_months == 0:
        assert current.same_last_year().start.weekday() == current.start.weekday()
        assert current.previous().days == current.days


@pytest.mark.parametrize(
    ("text", "noun", "days"),
    [("yesterday", "day", 1), ("last-week", "week", 7), ("2024-02", "month", 29), ("last-7-days", "7 days", 7)],
)
def test_nouns_and_lengths(text: str, noun: str, days: int) -> None:
    period = parse_period(text, today=TODAY)
    assert (period.noun, period.days) == (noun, days)


def test_load_range_covers_all_comparisons() -> None:
    period = parse_period("2024-W10", today=TODAY)
    assert period.load_range() == (D(2023, 3, 6), D(2024, 3, 10))
    assert period.contains(D(2024, 3, 10)) and not period.contains(D(2024, 3, 11))


@settings(max_examples=200, deadline=None)
@given(
    start=st.dates(min_value=D(2001, 1, 1), max_value=D(2098, 12, 31)),
    length=st.integers(min_value=1, max_value=400),
)
def test_comparison_invariants(start: dt.date, length: int) -> None:
    end = start + dt.timedelta(days=length - 1)
    period = Period(start, end, label_for(start, end))
    previous, last_year = period.previous(), period.same_last_year()
    assert previous.end == start - dt.timedelta(days=1)  # always immediately before
    assert parse_period(period.label, today=TODAY) == period  # labels parse back to the same period
    if period.whole_months:
        assert previous.whole_months == period.whole_months
        assert (last_year.start.year, last_year.start.month) == (start.year - 1, start.month)
    else:
        assert previous.days == last_year.days == period.days
        assert (start - last_year.start).days == 364 and last_year.start.weekday() == start.weekday()
