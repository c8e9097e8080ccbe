"""Visit windows from day 0: pure date arithmetic, no database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ecrf.studies.protocol import read_protocol
from ecrf.studies.schedule import Window, schedule_for, visit_window, window_for

PROTOCOLS = Path(__file__).resolve().parents[2] / "ecrf" / "studies" / "protocols"
DAY0 = date(2026, 3, 2)


def test_target_is_day0_plus_target_day_with_window_around_it():
    window = visit_window(DAY0, target_day=30, before=7, after=7)

    assert window == Window(
        target=date(2026, 4, 1), earliest=date(2026, 3, 25), latest=date(2026, 4, 8)
    )


def test_day0_visit_without_window_is_a_single_day():
    window = visit_window(DAY0, target_day=0)

    assert (window.target, window.earliest, window.latest) == (DAY0, DAY0, DAY0)


def test_window_edges_are_inside_and_the_days_beyond_are_not():
    window = visit_window(DAY0, target_day=91, before=14, after=14)

    assert window.earliest == date(2026, 5, 18)
    assert window.latest == date(2026, 6, 15)
    assert window.contains(date(2026, 5, 18))
    assert window.contains(date(2026, 6, 15))
    assert not window.contains(date(2026, 5, 17))
    assert not window.contains(date(2026, 6, 16))


def test_deviation_counts_days_early_as_negative_and_late_as_positive():
    window = visit_window(DAY0, target_day=30, before=7, after=7)

    assert window.deviation_days(date(2026, 3, 22)) == -3
    assert window.deviation_days(date(2026, 4, 1)) == 0
    assert window.deviation_days(date(2026, 4, 10)) == 2


def test_range_visit_has_no_target_and_spans_its_days_before_day0():
    window = visit_window(DAY0, day_range=(-28, -1))

    assert window.target is None
    assert window.earliest == date(2026, 2, 2)
    assert window.latest == date(2026, 3, 1)
    assert window.contains(date(2026, 2, 2))
    assert not window.contains(DAY0)


def test_window_across_month_end_and_leap_day():
    window = visit_window(date(2024, 1, 31), target_day=30, before=7, after=7)

    assert window.target == date(2024, 3, 1)  # 2024 has a 29 February
    assert window.earliest == date(2024, 2, 23)
    assert window.latest == date(2024, 3, 8)
    assert visit_window(date(2023, 1, 31), target_day=30).target == date(2023, 3, 2)


def test_window_across_year_end():
    window = visit_window(date(2025, 12, 20), target_day=365, before=30, after=30)

    assert (window.earliest, window.target, window.latest) == (
        date(2026, 11, 20),
        date(2026, 12, 20),
        date(2027, 1, 19),
    )


def test_visit_without_window_has_no_dates_and_accepts_any_day():
    window = visit_window(DAY0)

    assert (window.target, window.earliest, window.latest) == (None, None, None)
    assert not window.has_bounds
    assert window.contains(date(1999, 1, 1))
    assert window.deviation_days(date(2099, 1, 1)) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_day": 30, "before": -1}, "must be >= 0"),
        ({"target_day": 30, "after": -2}, "must be >= 0"),
        ({"target_day": -1, "day_range": (-28, -1)}, "not both"),
        ({"day_range": (-1, -28)}, "must be ordered"),
        ({"before": 3}, "needs a target_day"),
    ],
)
def test_inconsistent_window_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        visit_window(DAY0, **kwargs)


def test_schedule_of_the_trial_lists_planned_visits_with_their_dates():
    protocol = read_protocol(PROTOCOLS / "NCT00479934.yaml")

    schedule = schedule_for(protocol, date(2026, 1, 15))

    rows = [(visit.code, w.earliest, w.target, w.latest) for visit, w in schedule]
    assert rows == [
        ("SCR", date(2025, 12, 18), None, date(2026, 1, 14)),
        ("M0", date(2026, 1, 15), date(2026, 1, 15), date(2026, 1, 15)),
        ("M1", date(2026, 2, 7), date(2026, 2, 14), date(2026, 2, 21)),
        ("M3", date(2026, 4, 2), date(2026, 4, 16), date(2026, 4, 30)),
        ("M6", date(2026, 7, 2), date(2026, 7, 16), date(2026, 7, 30)),
        ("M12", date(2026, 12, 16), date(2027, 1, 15), date(2027, 2, 14)),
    ]


def test_schedule_keeps_follow_on_visits_without_dates():
    protocol = read_protocol(PROTOCOLS / "NCT04206644.yaml")

    schedule = schedule_for(protocol, DAY0)

    assert [(visit.code, window) for visit, window in schedule] == [
        ("V0", Window(target=DAY0, earliest=DAY0, latest=DAY0)),
        ("LAB", Window(target=None, earliest=None, latest=None)),
    ]


def test_window_for_reads_the_visit_of_the_protocol():
    visit = read_protocol(PROTOCOLS / "NCT00479934.yaml").visit("M6")

    assert window_for(visit, DAY0) == visit_window(DAY0, target_day=182, before=14, after=14)
