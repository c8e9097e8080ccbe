from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.services import email_queue
from ecrf.notifications.tasks import send_email, send_pending_emails

pytestmark = pytest.mark.django_db(transaction=True)


def queue(key="k1"):
    with transaction.atomic():
        return email_queue(
            dedupe_key=key, kind="test", recipients=["a@example.org"], subject="S", body="B"
        )


def test_email_is_sent_on_commit_once():
    email = queue()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert len(mail.outbox) == 1
    assert send_email.delay(email.pk).get() == "already-claimed"
    assert len(mail.outbox) == 1


def test_same_dedupe_key_queues_nothing_new():
    first = queue("same")
    second = queue("same")
    assert first.pk == second.pk
    assert len(mail.outbox) == 1


def test_nothing_is_sent_when_the_transaction_rolls_back():
    with pytest.raises(RuntimeError), transaction.atomic():
        email_queue(dedupe_key="x", kind="t", recipients=["a@example.org"], subject="S", body="B")
        raise RuntimeError("rollback")
    assert not OutboundEmail.objects.exists()
    assert mail.outbox == []


def test_failed_send_goes_back_to_pending_and_is_retried(settings, monkeypatch):
    from django.core.mail import EmailMessage

    calls = []

    def broken_send(self, fail_silently=False):
        calls.append(1)
        raise ConnectionError("smtp down")

    monkeypatch.setattr(EmailMessage, "send", broken_send)
    email = OutboundEmail.objects.create(
        dedupe_key="retry", kind="t", recipients=["a@example.org"], subject="S", body="B"
    )
    with pytest.raises(ConnectionError):
        send_email.apply(args=[email.pk], throw=True)
    email.refresh_from_db()
    assert email.status in (OutboundEmail.Status.PENDING, OutboundEmail.Status.FAILED)
    assert email.attempts >= 1
    assert "smtp down" in email.last_error


def test_beat_task_requeues_stale_claims_and_old_pending():
    old = timezone.now() - timedelta(minutes=30)
    stale = OutboundEmail.objects.create(
        dedupe_key="stale", kind="t", recipients=["a@example.org"], subject="Stale", body="B",
        status=OutboundEmail.Status.SENDING, claimed_at=old,
    )  # fmt: skip
    OutboundEmail.objects.filter(pk=stale.pk).update(created_at=old)
    assert send_pending_emails.delay().get() == 1
    stale.refresh_from_db()
    assert stale.status == OutboundEmail.Status.SENT
    assert [m.subject for m in mail.outbox] == ["Stale"]
