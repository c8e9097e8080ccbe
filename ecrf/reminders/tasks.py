from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from ecrf.reminders.rules import parse_instant
from ecrf.reminders.services import reminders_sweep


@shared_task
def sweep_reminders(at: str | None = None) -> dict[str, int]:
    """Beat task, every 15 minutes: record and queue the reminders due now (idempotent).

    `at`, an ISO 8601 date and time (without an offset: the server's TIME_ZONE), sweeps at
    that instant instead of now: a sweep replayed after an outage, or a test's instant.
    """
    result = reminders_sweep(at=timezone.now() if at is None else parse_instant(at))
    return {
        "due": len(result.due),
        "recorded": result.recorded,
        "queued": result.queued,
        "emails": result.emails,
        "cancelled": result.cancelled,
    }
