from __future__ import annotations

import logging
from datetime import timedelta
from smtplib import SMTPException

from celery import shared_task
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from ecrf.notifications.models import OutboundEmail

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
# A claim older than this is a worker that died mid-send; the periodic task retries it.
STALE_CLAIM = timedelta(minutes=10)


@shared_task(
    bind=True,
    autoretry_for=(SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    max_retries=MAX_ATTEMPTS - 1,
)
def send_email(self, email_id: int) -> str:
    """Send one recorded email at most once; returns what happened (for logs and tests)."""
    claimed = OutboundEmail.objects.filter(pk=email_id, status=OutboundEmail.Status.PENDING).update(
        status=OutboundEmail.Status.SENDING, claimed_at=timezone.now()
    )
    if not claimed:
        return "already-claimed"
    email = OutboundEmail.objects.get(pk=email_id)
    try:
        EmailMessage(subject=email.subject, body=email.body, to=email.recipients).send()
    except Exception as exc:
        OutboundEmail.objects.filter(pk=email_id).update(
            status=OutboundEmail.Status.PENDING
            if email.attempts + 1 < MAX_ATTEMPTS
            else OutboundEmail.Status.FAILED,
            attempts=email.attempts + 1,
            last_error=str(exc)[:2000],
        )
        raise
    OutboundEmail.objects.filter(pk=email_id).update(
        status=OutboundEmail.Status.SENT, sent_at=timezone.now(), attempts=email.attempts + 1
    )
    return "sent"


@shared_task
def send_pending_emails() -> int:
    """Beat task: queue emails whose first dispatch was lost (broker down, worker killed)."""
    stale = timezone.now() - STALE_CLAIM
    with transaction.atomic():
        OutboundEmail.objects.filter(
            status=OutboundEmail.Status.SENDING, claimed_at__lt=stale
        ).update(status=OutboundEmail.Status.PENDING)
    ids = list(
        OutboundEmail.objects.filter(
            status=OutboundEmail.Status.PENDING,
            created_at__lt=timezone.now() - timedelta(minutes=1),
        ).values_list("pk", flat=True)[:100]
    )
    for email_id in ids:
        send_email.delay(email_id)
    return len(ids)
