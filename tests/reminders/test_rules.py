"""When each reminder is due, from the dates and the protocol's `reminders:` (pure rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from ecrf.reminders.models import Kind
from ecrf.reminders.rules import (
    pregnancy_test_due_on,
    reminder_day,
    repeated_overdue,
    send_instant,
    visit_due_on,
    visit_next_due,
)
from ecrf.studies.protocol import PregnancyTestReminder, RemindersSpec

SPEC = RemindersSpec(
    window_opens_in_days=(7, 0),
    days_before_target=(0,),
    window_closes_in_days=(3,),
    overdue_after_days=0,
    overdue_repeat_days=7,
)
# M3 of a patient included on 2027-01-04: target day 91, window -14/+14.
EARLIEST, TARGET, LATEST = date(2027, 3, 22), date(2027, 4, 5), date(2027, 4, 19)


def due(day):
    return visit_due_on(day, earliest=EARLIEST, target=TARGET, latest=LATEST, spec=SPEC)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2027, 3, 14), None),
        (date(2027, 3, 15), (Kind.WINDOW_OPENS, 7)),
        (date(2027, 3, 16), None),
        (date(2027, 3, 21), None),
        (date(2027, 3, 22), (Kind.WINDOW_OPENS, 0)),  # the window's first day, inclusive
        (date(2027, 4, 4), None),
        (date(2027, 4, 5), (Kind.BEFORE_TARGET, 0)),
        (date(2027, 4, 15), None),
        (date(2027, 4, 16), (Kind.WINDOW_CLOSES, 3)),
        (date(2027, 4, 19), None),  # the window's last day: not yet overdue
        (date(2027, 4, 20), (Kind.OVERDUE, 1)),  # the day after the window closes
        (date(2027, 4, 21), None),
        (date(2027, 4, 26), None),
        (date(2027, 4, 27), (Kind.OVERDUE, 2)),  # then every 7 days
        (date(2027, 5, 4), (Kind.OVERDUE, 3)),
    ],
)
def test_each_visit_reminder_falls_on_its_day_and_not_the_day_before_or_after(day, expected):
    hit = due(day)
    assert (hit and (hit.kind, hit.occurrence)) == expected


def test_overdue_after_days_delays_the_first_overdue_reminder():
    spec = SPEC.model_copy(update={"overdue_after_days": 2, "overdue_repeat_days": 1})
    hits = [
        visit_due_on(LATEST + timedelta(days=n), earliest=EARLIEST, target=TARGET, latest=LATEST,
                     spec=spec)
        for n in range(1, 6)
    ]  # fmt: skip
    assert [h and (h.kind, h.occurrence) for h in hits] == [
        None,
        None,
        (Kind.OVERDUE, 1),
        (Kind.OVERDUE, 2),
        (Kind.OVERDUE, 3),
    ]


def test_a_visit_without_window_gets_one_reminder_on_its_day_the_most_pressing():
    day = date(2027, 1, 4)
    hit = visit_due_on(day, earliest=day, target=day, latest=day, spec=SPEC)
    assert (hit.kind, hit.occurrence) == (Kind.BEFORE_TARGET, 0)
    spec = SPEC.model_copy(update={"window_closes_in_days": (0,)})
    hit = visit_due_on(day, earliest=day, target=day, latest=day, spec=spec)
    assert (hit.kind, hit.occurrence) == (Kind.WINDOW_CLOSES, 0)


def test_a_visit_without_dates_gets_nothing():
    assert (
        visit_due_on(date(2027, 1, 4), earliest=None, target=None, latest=None, spec=SPEC) is None
    )


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2027, 3, 1), (Kind.WINDOW_OPENS, 7, date(2027, 3, 15))),
        (date(2027, 3, 15), (Kind.WINDOW_OPENS, 7, date(2027, 3, 15))),  # today included
        (date(2027, 3, 16), (Kind.WINDOW_OPENS, 0, date(2027, 3, 22))),
        (date(2027, 4, 6), (Kind.WINDOW_CLOSES, 3, date(2027, 4, 16))),
        (date(2027, 4, 17), (Kind.OVERDUE, 1, date(2027, 4, 20))),
        (date(2027, 4, 21), (Kind.OVERDUE, 2, date(2027, 4, 27))),
        (date(2027, 4, 27), (Kind.OVERDUE, 2, date(2027, 4, 27))),
    ],
)
def test_the_next_reminder_of_a_visit(today, expected):
    hit = visit_next_due(today, earliest=EARLIEST, target=TARGET, latest=LATEST, spec=SPEC)
    assert (hit.kind, hit.occurrence, hit.day) == expected


def test_the_sending_hour_is_local_time_on_both_sides_of_a_daylight_saving_change():
    def at(day, hour, minute=0):
        return send_instant(day, time(hour, minute), "Europe/Paris")

    # Winter (CET, UTC+1), the spring change day (Sunday 28 March 2027), the autumn one.
    assert at(date(2027, 3, 27), 8) == datetime(2027, 3, 27, 7, 0, tzinfo=UTC)
    assert at(date(2027, 3, 28), 8) == datetime(2027, 3, 28, 6, 0, tzinfo=UTC)
    assert at(date(2027, 10, 31), 8) == datetime(2027, 10, 31, 7, 0, tzinfo=UTC)
    # A sending hour inside the spring gap comes out after it (03:30 summer time).
    assert at(date(2027, 3, 28), 2, 30) == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now_utc", "expected"),
    [
        (datetime(2027, 3, 28, 5, 59, tzinfo=UTC), None),  # 07:59 summer time
        (datetime(2027, 3, 28, 6, 0, tzinfo=UTC), date(2027, 3, 28)),  # 08:00 summer time
        (datetime(2027, 3, 28, 21, 59, tzinfo=UTC), date(2027, 3, 28)),  # 23:59 local
        (datetime(2027, 3, 28, 22, 0, tzinfo=UTC), None),  # 00:00 local the next day
        (datetime(2027, 3, 27, 6, 30, tzinfo=UTC), None),  # 07:30 winter time
        (datetime(2027, 3, 27, 7, 0, tzinfo=UTC), date(2027, 3, 27)),
    ],
)
def test_a_day_reminders_are_due_from_the_local_sending_hour_to_midnight(now_utc, expected):
    assert reminder_day(now_utc, time(8, 0), "Europe/Paris") == expected


def test_pregnancy_test_reminders_count_back_from_the_planned_inclusion():
    spec = PregnancyTestReminder(days_before_inclusion=7, remind_days_before_inclusion=(2,))
    planned = date(2027, 1, 11)
    days = {planned - timedelta(days=n): pregnancy_test_due_on(planned - timedelta(days=n),
                                                                planned_day0=planned, spec=spec)
            for n in range(0, 10)}  # fmt: skip
    assert {day: left for day, left in days.items() if left is not None} == {
        date(2027, 1, 4): 7,
        date(2027, 1, 9): 2,
    }


def test_a_deadline_repeats_its_overdue_reminder_each_period():
    due_at = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)
    every = timedelta(hours=24)
    assert repeated_overdue(due_at - timedelta(seconds=1), due=due_at, every=every) is None
    assert repeated_overdue(due_at, due=due_at, every=every) == 1
    assert repeated_overdue(due_at + timedelta(hours=23, minutes=59), due=due_at, every=every) == 1
    assert repeated_overdue(due_at + timedelta(hours=24), due=due_at, every=every) == 2
