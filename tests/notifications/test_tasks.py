from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from ecrf.celery import app
from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.services import email_queue
from ecrf.notifications.tasks import MAX_ATTEMPTS, send_email, send_pending_emails
from tests.factories import OutboundEmailFactory

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


@pytest.fixture
def flaky_smtp(monkeypatch):
    """EmailMessage.send failing the first `failures` times, like an SMTP server that is down."""
    from django.core.mail import EmailMessage

    real_send = EmailMessage.send
    state = {"failures": 0, "calls": 0}

    def send(self, *args, **kwargs):
        state["calls"] += 1
        if state["calls"] <= state["failures"]:
            raise ConnectionError("smtp down")
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(EmailMessage, "send", send)
    # Eager retries re-apply the task with the app's propagate setting: let them run.
    app.conf.task_eager_propagates = False
    yield state
    app.conf.task_eager_propagates = True


def make_email():
    return OutboundEmailFactory(dedupe_key="retry")


def test_transient_failure_is_retried_then_sent_once(flaky_smtp):
    flaky_smtp["failures"] = 2
    email = make_email()
    assert send_email.apply(args=[email.pk]).get() == "sent"
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("sent", 3, "smtp down")
    assert flaky_smtp["calls"] == 3
    assert len(mail.outbox) == 1


def test_send_gives_up_after_max_attempts_and_marks_failed(flaky_smtp):
    flaky_smtp["failures"] = 99
    email = make_email()
    result = send_email.apply(args=[email.pk])
    assert result.state == "FAILURE"
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("failed", MAX_ATTEMPTS)
    assert flaky_smtp["calls"] == MAX_ATTEMPTS
    assert mail.outbox == []


def test_beat_task_requeues_stale_claims_and_old_pending():
    old = timezone.now() - timedelta(minutes=30)
    stale = OutboundEmailFactory(
        subject="Stale", status=OutboundEmail.Status.SENDING, claimed_at=old
    )
    OutboundEmail.objects.filter(pk=stale.pk).update(created_at=old)
    assert send_pending_emails.delay().get() == 1
    stale.refresh_from_db()
    assert stale.status == OutboundEmail.Status.SENT
    assert [m.subject for m in mail.outbox] == ["Stale"]


@pytest.mark.parametrize(
    "outage",
    [OperationalError("Error 111 connecting to 127.0.0.1:6379"), FileNotFoundError("queue")],
)
def test_broker_down_keeps_the_write_and_the_beat_task_sends_it_later(monkeypatch, outage):
    def broker_down(*args, **kwargs):
        raise outage

    monkeypatch.setattr(send_email, "delay", broker_down)
    email = queue("outage")  # the commit succeeds: no error reaches the user
    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.PENDING, 0)
    assert mail.outbox == []

    monkeypatch.undo()
    OutboundEmail.objects.filter(pk=email.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    assert send_pending_emails.delay().get() == 1
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert len(mail.outbox) == 1
