"""Visit window arithmetic: dates from day 0 and a visit's days, nothing else.

Kept free of Django and of the database so the rule every screen, reminder and
protocol-deviation check relies on is one small function, tested on its own. Day 0
is the inclusion date; a visit's days (target, window, range) come from the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Window:
    """The dates of one visit for one patient; None where the visit has no such bound."""

    target: date | None
    earliest: date | None
    latest: date | None

    @property
    def has_bounds(self) -> bool:
        return self.earliest is not None or self.latest is not None

    def contains(self, day: date) -> bool:
        """Whether a visit on `day` is inside the window; a visit with no window takes any day."""
        return self.deviation_days(day) == 0

    def deviation_days(self, day: date) -> int:
        """0 inside the window; else how far outside: negative too early, positive too late.

        Deviation reports and queries state the number of days, not just "outside".
        """
        if self.earliest is not None and day < self.earliest:
            return (day - self.earliest).days
        if self.latest is not None and day > self.latest:
            return (day - self.latest).days
        return 0


NO_WINDOW = Window(target=None, earliest=None, latest=None)


def visit_window(
    day0: date,
    *,
    target_day: int | None = None,
    before: int = 0,
    after: int = 0,
    day_range: tuple[int, int] | None = None,
) -> Window:
    """Dates of a visit whose days count from `day0`.

    Either `target_day` with a window of `before`/`after` days around it, or a
    `day_range` (first, last day) for a visit with a span and no target; neither gives
    a visit with no window (unscheduled, or only ordered after another visit).
    """
    if before < 0 or after < 0:
        raise ValueError(f"window sizes must be >= 0, not -{before}/+{after}")
    if day_range is not None:
        if target_day is not None or before or after:
            raise ValueError("give target_day with its window, or day_range, not both")
        first, last = day_range
        if first > last:
            raise ValueError(f"day_range must be ordered, not {first}..{last}")
        return Window(
            target=None, earliest=day0 + timedelta(days=first), latest=day0 + timedelta(days=last)
        )
    if target_day is None:
        if before or after:
            raise ValueError("a window needs a target_day")
        return NO_WINDOW
    target = day0 + timedelta(days=target_day)
    return Window(
        target=target,
        earliest=target - timedelta(days=before),
        latest=target + timedelta(days=after),
    )


def window_for(visit, day0: date) -> Window:
    """The window of a protocol visit (anything shaped like studies.protocol.VisitSpec)."""
    day_range = visit.day_range
    return visit_window(
        day0,
        target_day=visit.target_day,
        before=visit.window_before_days,
        after=visit.window_after_days,
        day_range=(day_range.min, day_range.max) if day_range is not None else None,
    )


def schedule_for(protocol, day0: date) -> list[tuple[object, Window]]:
    """The patient's planned visits in protocol order, each with its window.

    Unscheduled visits are left out: they have no place in a plan. Visits that only
    follow another (laboratory results) are kept, with no dates, so the plan shows them.
    """
    return [
        (visit, window_for(visit, day0)) for visit in protocol.visits if visit.kind != "unscheduled"
    ]
