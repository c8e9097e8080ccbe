"""When each reminder is due: pure functions of the dates and the protocol's `reminders:`.

The sweep narrows the rows in SQL (`services.py`) and asks these functions what is due;
the upcoming-visits page asks them what comes next. Days are calendar days in the site's
time zone; a day's reminders go out at the protocol's `send_at`, local time, so a
daylight-saving change moves nothing by an hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ecrf.reminders.models import Kind

# When several of a visit's reminders fall on one day (a visit without a window opens,
# reaches its target and closes on the same day), the most pressing one is sent.
_PRESSING = [Kind.OVERDUE, Kind.WINDOW_CLOSES, Kind.BEFORE_TARGET, Kind.WINDOW_OPENS]


@dataclass(frozen=True)
class VisitDue:
    kind: Kind
    occurrence: int  # days before (window opens, target, window closes), n-th overdue
    day: date


def send_instant(day: date, at: time, zone: str) -> datetime:
    """The instant a day's reminders go out at a site: `at` on that day, local time.

    A local time skipped by the spring change (02:30 in Paris) comes out an hour later
    (03:30, summer time); one that happens twice in the autumn is the first of the two.
    """
    return datetime.combine(day, at).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def parse_instant(value: str) -> datetime:
    """An ISO 8601 date and time; without an offset, in the server's TIME_ZONE (Paris).
    ValueError says how to write it."""
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(
            f"{value!r} is not a date and time: give ISO 8601, for example "
            "2027-03-01T08:15 or 2027-03-01T08:15+01:00."
        )
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


def reminder_day(now: datetime, at: time, zone: str) -> date | None:
    """The site's calendar day whose reminders are due at `now`: today once its sending
    hour has passed, None before it (the day before's went out the day before)."""
    local_today = now.astimezone(ZoneInfo(zone)).date()
    return local_today if now >= send_instant(local_today, at, zone) else None


def visit_due_on(
    day: date,
    *,
    earliest: date | None,
    target: date | None,
    latest: date | None,
    spec,
) -> VisitDue | None:
    """The reminder a planned visit gets on `day` (None: none), by the protocol's spec."""
    found: dict[Kind, int] = {}
    for kind, anchor, days in (
        (Kind.WINDOW_OPENS, earliest, spec.window_opens_in_days),
        (Kind.BEFORE_TARGET, target, spec.days_before_target),
        (Kind.WINDOW_CLOSES, latest, spec.window_closes_in_days),
    ):
        if anchor is not None and (anchor - day).days in days:
            found[kind] = (anchor - day).days
    if latest is not None:
        first = latest + timedelta(days=1 + spec.overdue_after_days)
        late = (day - first).days
        if late >= 0 and late % spec.overdue_repeat_days == 0:
            found[Kind.OVERDUE] = 1 + late // spec.overdue_repeat_days
    for kind in _PRESSING:
        if kind in found:
            return VisitDue(kind, found[kind], day)
    return None


def visit_next_due(
    today: date, *, earliest: date | None, target: date | None, latest: date | None, spec
) -> VisitDue | None:
    """The next reminder of a planned visit from `today` on (today included)."""
    candidates = [
        anchor - timedelta(days=n)
        for anchor, days in (
            (earliest, spec.window_opens_in_days),
            (target, spec.days_before_target),
            (latest, spec.window_closes_in_days),
        )
        if anchor is not None
        for n in days
    ]
    if latest is not None:
        first = latest + timedelta(days=1 + spec.overdue_after_days)
        if today <= first:
            candidates.append(first)
        else:
            late = (today - first).days
            repeat = spec.overdue_repeat_days
            candidates.append(first + timedelta(days=-(-late // repeat) * repeat))
    for day in sorted(d for d in candidates if d >= today):
        due = visit_due_on(day, earliest=earliest, target=target, latest=latest, spec=spec)
        if due is not None:
            return due
    return None


def pregnancy_test_due_on(day: date, *, planned_day0: date, spec) -> int | None:
    """The pregnancy-test reminder due on `day` before a planned inclusion: the number of
    days left before inclusion, or None. The first one goes on the day a test starts to
    count (days_before_inclusion before day 0), the others as the protocol says."""
    left = (planned_day0 - day).days
    if left == spec.days_before_inclusion or left in spec.remind_days_before_inclusion:
        return left
    return None


def repeated_overdue(now: datetime, *, due: datetime, every: timedelta) -> int | None:
    """The n-th overdue period of a deadline at `now` (1 from the deadline on), or None."""
    if now < due:
        return None
    return 1 + int((now - due) // every)


def query_reminder_due(day: date, *, waiting_since: date, every_days: int) -> bool:
    """A query unanswered since `waiting_since` (its raise, or its reopening) reminds the
    site every `every_days` days: on day N, 2N, ... of the wait."""
    waited = (day - waiting_since).days
    return waited >= every_days and waited % every_days == 0
