"""The tests' clock: every test starts at tests.clock.NOW, whatever day the suite runs."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.clock import NOW, TODAY


def test_a_test_starts_at_the_fixed_instant_and_time_runs_on():
    assert timezone.localdate() == TODAY
    first = timezone.now()
    assert NOW <= first < NOW + timedelta(minutes=1)
    time.sleep(0.01)
    assert timezone.now() > first  # distinct, ordered timestamps


def test_a_test_can_move_the_clock(fixed_clock):
    fixed_clock.shift(timedelta(days=1))
    assert timezone.localdate() == TODAY + timedelta(days=1)


def test_each_test_starts_again_at_the_fixed_instant():
    assert timezone.localdate() == TODAY


@pytest.mark.worker
def test_real_worker_tests_keep_the_real_clock(fixed_clock):
    # Their Celery workers are other processes: both sides must read the same clock.
    assert fixed_clock is None
