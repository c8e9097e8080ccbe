from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from ecrf.reminders.services import reminders_sweep


@shared_task
def sweep_reminders() -> dict[str, int]:
    """Beat task, every 15 minutes: record and queue the reminders due now (idempotent)."""
    result = reminders_sweep(at=timezone.now())
    return {
        "due": len(result.due),
        "recorded": result.recorded,
        "queued": result.queued,
        "emails": result.emails,
        "cancelled": result.cancelled,
    }
