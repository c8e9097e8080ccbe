"""A real Celery worker, started by the test against Redis, running the email task end to end.

The worker harness (the `redis_worker` fixture, `wait_for`) is tests/workers.py.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.services import email_queue
from ecrf.notifications.tasks import send_email
from tests.workers import sent_subjects, wait_for


def _queue(key: str, subject: str) -> OutboundEmail:
    with transaction.atomic():
        return email_queue(
            dedupe_key=key,
            kind="test",
            recipients=["sponsor@example.org"],
            subject=subject,
            body="Sent by a real Celery worker.",
        )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_sends_queued_email_exactly_once(redis_worker):
    mail_dir = redis_worker
    email = _queue("worker-test-1", "First notification")
    assert wait_for(
        lambda: OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENT
    ), "the worker did not send the email within 60 s"

    # The task delivered twice (a redelivery after a worker restart looks like this)
    # finds the row already claimed and sends nothing.
    send_email.delay(email.pk)
    marker = _queue("worker-test-2", "Marker notification")
    assert wait_for(
        lambda: OutboundEmail.objects.get(pk=marker.pk).status == OutboundEmail.Status.SENT
    )
    subjects = sent_subjects(mail_dir)
    assert subjects.count("First notification") == 1
    assert subjects.count("Marker notification") == 1
    email.refresh_from_db()
    assert email.attempts == 1
    assert email.sent_at is not None
