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


class _SendFailed(Exception):
    """A send that failed and is recorded as such (pending again, or failed for good)."""


def _send_one(email_id: int) -> str:
    """Claim one recorded email (pending → sending) and send it; what happened, for logs.

    Only the worker whose conditional UPDATE claims the row sends it: a second run of the
    task, or a second worker, finds nothing to claim.
    """
    claimed = OutboundEmail.objects.filter(pk=email_id, status=OutboundEmail.Status.PENDING).update(
        status=OutboundEmail.Status.SENDING, claimed_at=timezone.now()
    )
    if not claimed:
        return "already-claimed"
    email = OutboundEmail.objects.get(pk=email_id)
    try:
        EmailMessage(subject=email.subject, body=email.body, to=email.recipients).send()
    except Exception as exc:
        retry = email.attempts + 1 < MAX_ATTEMPTS
        OutboundEmail.objects.filter(pk=email_id).update(
            status=OutboundEmail.Status.PENDING if retry else OutboundEmail.Status.FAILED,
            attempts=email.attempts + 1,
            last_error=str(exc)[:2000],
        )
        raise _SendFailed(retry) from exc
    OutboundEmail.objects.filter(pk=email_id).update(
        status=OutboundEmail.Status.SENT, sent_at=timezone.now(), attempts=email.attempts + 1
    )
    return "sent"


TRANSIENT = (SMTPException, ConnectionError, TimeoutError)


@shared_task(bind=True, max_retries=MAX_ATTEMPTS - 1)
def send_email(self, email_id: int) -> str:
    """Send one recorded email at most once; a transient failure retries with backoff."""
    try:
        return _send_one(email_id)
    except _SendFailed as failed:
        retry, cause = failed.args[0], failed.__cause__
        if retry and isinstance(cause, TRANSIENT):
            raise self.retry(exc=cause, countdown=_backoff(self.request.retries)) from None
        raise cause from None


@shared_task
def send_emails(email_ids: list[int]) -> dict[str, int]:
    """Send a batch of recorded emails; one that fails goes on retrying on its own."""
    outcome: dict[str, int] = {}
    for email_id in email_ids:
        try:
            result = _send_one(email_id)
        except _SendFailed as failed:
            result = "failed"
            if failed.args[0]:
                result = "retrying"
                send_email.apply_async((email_id,), countdown=_backoff(0))
            log.warning("email %s not sent: %s", email_id, failed.__cause__)
        outcome[result] = outcome.get(result, 0) + 1
    return outcome


def _backoff(retries: int) -> int:
    """Seconds before the next try: 1 min, 2, 4, 8 (capped at an hour)."""
    return min(60 * 2**retries, 3600)


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
