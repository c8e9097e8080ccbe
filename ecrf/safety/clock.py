"""Dates and deadlines of safety reporting, as small pure functions.

Instants are aware datetimes in UTC; deadlines are added to them as exact durations, so
a 24-hour deadline that crosses a daylight-saving change is still 24 hours (it then ends
at another wall-clock hour in Paris). Local times typed by a site are turned into UTC
with the site's zone, refusing a time that does not exist there.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# ASCII digits and the whole string, as the database's check (models.PARTIAL_DATE_RE):
# Python's \d takes other scripts' digits, and $ matches before a final newline.
PARTIAL_DATE = re.compile(r"([0-9]{4})-([0-9]{2})(?:-([0-9]{2}))?")

# scoring.md §6 [P]: a fatal or life-threatening SUSAR is due to the authorities within
# 7 calendar days of the sponsor's first knowledge, its complete report 8 days later;
# any other SUSAR within 15 days.
SUSAR_FAST_DAYS = 7
SUSAR_FAST_COMPLETE_EXTRA_DAYS = 8
SUSAR_STANDARD_DAYS = 15


class PartialDateError(ValueError):
    pass


def partial_date_bounds(value: str) -> tuple[date, date]:
    """The first and last day a YYYY-MM or YYYY-MM-DD date may stand for."""
    match = PARTIAL_DATE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise PartialDateError(f"{value!r} is not YYYY-MM-DD or YYYY-MM")
    year, month, day = (int(part) if part else None for part in match.groups())
    if not 1 <= month <= 12:
        raise PartialDateError(f"{value!r}: month {month} does not exist")
    try:  # year 0000 is not a year of the calendar either
        if day is None:
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        exact = date(year, month, day)
    except ValueError:
        raise PartialDateError(f"{value!r} is not a date of the calendar") from None
    return exact, exact


def sae_due_at(aware_at: datetime, hours: int) -> datetime:
    """The investigator's deadline: exactly `hours` after becoming aware."""
    if aware_at.tzinfo is None:
        raise ValueError("aware_at must be an aware datetime")
    return (aware_at + timedelta(hours=hours)).astimezone(UTC)


def site_date(instant: datetime, zone: str) -> date:
    """The calendar day an instant falls on at a site."""
    return instant.astimezone(ZoneInfo(zone)).date()


def local_instant(day: date, at: time, zone: str) -> datetime:
    """A wall-clock date and time at a site, as a UTC instant.

    A time skipped by the spring change (02:30 on the last Sunday of March in Paris)
    raises; a time that happens twice in the autumn is taken as its first occurrence
    (summer time), the earlier instant, so a deadline computed from it is never late.
    """
    tz = ZoneInfo(zone)
    naive = datetime.combine(day, at)
    local = naive.replace(tzinfo=tz)
    # A non-existent local time does not survive the round trip through UTC.
    if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise ValueError(f"{naive:%Y-%m-%d %H:%M} does not exist in {zone} (clocks go forward)")
    return local.astimezone(UTC)


@dataclass(frozen=True)
class SusarClock:
    """The sponsor's regulatory clock for one SUSAR."""

    days: int  # 7 or 15
    start: datetime  # the sponsor's first knowledge
    due: datetime
    complete_due: datetime | None  # the complete report of a 7-day case

    def overdue(self, now: datetime, *, reported_at: datetime | None = None) -> bool:
        return (reported_at or now) > self.due


def susar_clock(*, first_knowledge: datetime, fatal_or_life_threatening: bool) -> SusarClock:
    if fatal_or_life_threatening:
        due = first_knowledge + timedelta(days=SUSAR_FAST_DAYS)
        return SusarClock(
            SUSAR_FAST_DAYS,
            first_knowledge,
            due,
            due + timedelta(days=SUSAR_FAST_COMPLETE_EXTRA_DAYS),
        )
    return SusarClock(
        SUSAR_STANDARD_DAYS,
        first_knowledge,
        first_knowledge + timedelta(days=SUSAR_STANDARD_DAYS),
        None,
    )


def duration_label(delta: timedelta, *, day: str = "d") -> str:
    """'3 h 05 min', '2 d 4 h', '-1 h 10 min' (negative = late); `day` is the unit of days
    in the reader's language ('j' in French)."""
    sign = "-" if delta < timedelta(0) else ""
    minutes = int(abs(delta).total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{sign}{days} {day} {hours} h"
    return f"{sign}{hours} h {minutes:02d} min"
