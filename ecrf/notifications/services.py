from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from ecrf.notifications.models import OutboundEmail


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
        transaction.on_commit(lambda: send_email.delay(email.pk))
    return email
