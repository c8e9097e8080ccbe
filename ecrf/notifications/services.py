from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction
from kombu.exceptions import OperationalError

from ecrf.notifications.models import OutboundEmail

log = logging.getLogger(__name__)


def email_queue(
    *, dedupe_key: str, kind: str, recipients: Sequence[str], subject: str, body: str
) -> OutboundEmail:
    """Record an email and send it through Celery once the transaction commits.

    Queuing the same `dedupe_key` again returns the existing row and sends nothing new.
    """
    from ecrf.notifications.tasks import send_email

    email, created = OutboundEmail.objects.get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "kind": kind,
            "recipients": list(recipients),
            "subject": subject,
            "body": body,
        },
    )
    if created:
        transaction.on_commit(lambda: _dispatch(send_email, email.pk))
    return email


# Emails handed to one task: a sweep of thousands of reminders is a few broker messages.
DISPATCH_BATCH = 50


def emails_dispatch_on_commit(email_ids: Sequence[int]) -> None:
    """Send these recorded emails once the transaction commits, a batch per task."""
    from ecrf.notifications.tasks import send_emails

    ids = list(email_ids)
    for start in range(0, len(ids), DISPATCH_BATCH):
        batch = ids[start : start + DISPATCH_BATCH]
        transaction.on_commit(lambda batch=batch: _dispatch(send_emails, batch))


def _dispatch(task, email_id) -> None:
    """Hand the email to the broker. The write it belongs to is committed by now: a broker
    that is down must not turn it into an error page. The row stays pending and the beat
    task `send_pending_emails` queues it again."""
    try:
        task.delay(email_id)
    except (OperationalError, OSError):  # what kombu raises when the broker is unreachable
        log.exception("email %s not queued (broker unavailable); beat will retry", email_id)
