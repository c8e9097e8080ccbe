"""Reminders of the imatinib trial's Bordeaux (BXP) and Strasbourg (STR) sites.

Every sweep is given its instant explicitly (`at`): nothing here depends on today. A
patient included on Monday 4 January 2027 has M1 on 3 February (window 27 January to
10 February): its window opens in 7 days on 20 January, at 08:00 in Paris (07:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation

from ecrf.patients.models import Patient, Visit
from ecrf.patients.visits import visits_schedule_from_day0
from ecrf.reminders.models import Reminder
from ecrf.reminders.services import reminders_sweep

PARIS = ZoneInfo("Europe/Paris")
DAY0 = date(2027, 1, 4)


def paris(day: date, hour: int = 8, minute: int = 0) -> datetime:
    """A wall-clock time in Paris, as an instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS).astimezone(UTC)


def enrol(patient: Patient, day0: date = DAY0) -> Patient:
    """The patient included on `day0` (screening and inclusion visits done) with the rest
    of the schedule planned, written as rows."""
    Patient.objects.filter(pk=patient.pk).update(
        status=Patient.Status.ENROLLED, screening_date=day0 - timedelta(days=10), day0_date=day0
    )
    patient.refresh_from_db()
    visits_schedule_from_day0(patient=patient)
    patient.visits.filter(code="SCR").update(
        status=Visit.Status.COMPLETE, visit_date=day0 - timedelta(days=10)
    )
    patient.visits.filter(code="M0").update(status=Visit.Status.COMPLETE, visit_date=day0)
    return patient


def sweep(at: datetime, **kwargs):
    return reminders_sweep(at=at, **kwargs)


def rows(**filters) -> list[tuple]:
    """(kind, occurrence, username, visit code) of the recorded reminders, sorted."""
    return sorted(
        (r.kind, r.occurrence, r.recipient.username, r.visit.code if r.visit else None)
        for r in Reminder.objects.filter(**filters).select_related("recipient", "visit")
    )


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def trial(world):
    """Alice's first Bordeaux patient included on DAY0, Charlie's first Strasbourg one too."""
    return enrol(world.bxp_patients[0]), enrol(world.str_patients[0])
