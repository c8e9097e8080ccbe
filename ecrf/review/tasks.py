"""The review's Celery tasks: thin wrappers around its services."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ecrf.review.auto_queries import queries_raise_automatic


def parse_instant(value: str) -> datetime:
    """An ISO 8601 date and time; without an offset, in the server's TIME_ZONE."""
    parsed = parse_datetime(value.strip())
    if parsed is None:
        raise ValueError(f"{value!r} is not an ISO 8601 date and time (2027-03-01T08:15).")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    return parsed


@shared_task
def raise_automatic_queries(at: str | None = None) -> int:
    """Beat task, hourly: raise the queries the system's rules decide (idempotent).

    `at`, an ISO 8601 date and time, sweeps at that instant instead of now."""
    return len(queries_raise_automatic(at=timezone.now() if at is None else parse_instant(at)))
