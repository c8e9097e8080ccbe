"""The instant every test starts at, whatever day the suite runs (see tests/conftest.py).

A winter weekday in Paris (CET, so UTC and local dates agree), after every fixed date the
tests treat as past (the safety tests' October-November 2026 events, for instance).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 15, 10, 0, tzinfo=PARIS)
TODAY = NOW.date()
NOW_UTC = NOW.astimezone(UTC)
