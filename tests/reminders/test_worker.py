"""The reminders through real Celery workers against Redis: each one emailed exactly once.

Sweeps in this process and through the broker, two workers racing on one queue, a worker
killed while it sends, a broker down while the sweep commits, and (in-process, eager) a
mail server that refuses connections. The worker harness is tests/workers.py; every sweep
is given its instant (`at`), the sends run on the real clock.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.core import mail
from django.db.models import F
from kombu import Connection, pools

from ecrf.celery import app
from ecrf.notifications import tasks
from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.tasks import MAX_ATTEMPTS, STALE_CLAIM, send_emails, send_pending_emails
from ecrf.reminders.models import Reminder
from ecrf.reminders.services import reminders_sweep
from ecrf.reminders.tasks import sweep_reminders
from tests.reminders.conftest import enrol, paris
from tests.workers import SmtpDownBackend, header, sent_messages, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
worker = pytest.mark.worker

OPENS_IN_7 = date(2027, 1, 20)  # M1's window (27 January to 10 February) opens in 7 days
M1_TARGET = date(2027, 2, 3)
SWEEP = "ecrf.reminders.tasks.sweep_reminders"
BATCH = "ecrf.notifications.tasks.send_emails"
PENDING = "ecrf.notifications.tasks.send_pending_emails"
# Nothing listens on port 1: connecting is refused at once, as with a Redis that is down.
UNREACHABLE_BROKER = "redis://127.0.0.1:1/4"


def delivered(mail_dir) -> Counter:
    """(To, Subject) of every message the workers wrote, with how many times each."""
    return Counter((header(m, "To"), header(m, "Subject")) for m in sent_messages(mail_dir))


def expected() -> Counter:
    """One message per recorded reminder: its recipient, its email's subject."""
    return Counter(
        (r.recipient.email, r.email.subject)
        for r in Reminder.objects.select_related("recipient", "email")
    )


def all_sent(count: int) -> bool:
    statuses = list(OutboundEmail.objects.values_list("status", flat=True))
    return len(statuses) == count and set(statuses) == {OutboundEmail.Status.SENT}


def delivery_statuses() -> set[str]:
    return {r.delivery_status for r in Reminder.objects.select_related("email")}


@pytest.fixture
def enrolled(world):
    """Three Bordeaux patients (Alice and Bob are reminded), two in Strasbourg (Charlie)
    included on 4 January 2027: a day's reminders of M1 are 3 x 2 + 2 = 8."""
    return [enrol(patient) for patient in world.bxp_patients + world.str_patients]


@worker
def test_four_sweeps_and_two_racing_workers_email_each_reminder_once(
    enrolled, racing_workers, celery_workers
):
    mail_dir, _logs = racing_workers
    # Twice in this process, the second a quarter of an hour later (the beat's period).
    first = reminders_sweep(at=paris(OPENS_IN_7))
    again = reminders_sweep(at=paris(OPENS_IN_7, 8, 15))
    assert (first.recorded, first.emails) == (8, 8)
    assert (again.recorded, again.queued, again.emails) == (0, 0, 0)
    # Twice through the broker at once, at M1's target day: the two workers race.
    for _ in range(2):
        sweep_reminders.delay(paris(M1_TARGET).isoformat())
    assert wait_for(lambda: len(celery_workers.results(SWEEP)) == 2, timeout=90), (
        celery_workers.log_text()[-3000:]
    )
    sweeps = celery_workers.results(SWEEP)
    assert [s["due"] for s in sweeps] == [8, 8]
    assert sum(s["recorded"] for s in sweeps) == 8
    assert sum(s["emails"] for s in sweeps) == 8
    assert wait_for(lambda: all_sent(16), timeout=90), celery_workers.log_text()[-3000:]

    # Every batch delivered once more, as a broker redelivering after a crash would.
    send_emails.delay(list(OutboundEmail.objects.values_list("pk", flat=True)))
    assert wait_for(lambda: {"already-claimed": 16} in celery_workers.results(BATCH))

    reminders = list(Reminder.objects.select_related("recipient", "email"))
    assert len(reminders) == 16
    assert {(r.status, r.delivery_status) for r in reminders} == {("queued", "sent")}
    assert len({r.email_id for r in reminders}) == 16  # one email per reminder
    assert {r.email.attempts for r in reminders} == {1}
    assert delivered(mail_dir) == expected()
    assert set(expected().values()) == {1}
    recipients = defaultdict(list)
    for r in reminders:
        recipients[(r.kind, r.object_id, r.occurrence)].append(r.recipient.username)
    assert sorted(sorted(names) for names in recipients.values()) == (
        [["alice", "bob"]] * 6 + [["charlie"]] * 4
    )
    assert Counter(to for to, _subject in delivered(mail_dir).elements()) == {
        "alice@example.org": 6,
        "bob@example.org": 6,
        "charlie@example.org": 4,
    }


@worker
def test_a_worker_killed_mid_send_leaves_its_email_to_the_beat_task_sent_once(
    world, celery_workers
):
    enrol(world.bxp_patients[0]), enrol(world.str_patients[0])  # Alice, Bob; Charlie
    celery_workers.start("doomed", email_backend="tests.workers.StalledBackend")
    assert reminders_sweep(at=paris(OPENS_IN_7)).emails == 3
    # The worker claims the batch's first email, then hangs on the mail server: killed.
    assert wait_for(lambda: OutboundEmail.objects.filter(status="sending").exists())
    celery_workers.kill("doomed")
    claimed = OutboundEmail.objects.get(status="sending")
    assert OutboundEmail.objects.filter(status="pending").count() == 2
    celery_workers.start("w2")

    # Two minutes on, the beat task queues the two emails waiting in the outbox; it leaves
    # the claim alone: younger than STALE_CLAIM, its worker may be slow rather than dead.
    OutboundEmail.objects.update(created_at=F("created_at") - timedelta(minutes=2))
    send_pending_emails.delay()
    assert wait_for(lambda: OutboundEmail.objects.filter(status="sent").count() == 2)
    assert celery_workers.results(PENDING) == [2]
    claimed.refresh_from_db()
    assert claimed.status == OutboundEmail.Status.SENDING

    # Past STALE_CLAIM the claim is given up and the email sent, once.
    OutboundEmail.objects.filter(pk=claimed.pk).update(
        claimed_at=F("claimed_at") - STALE_CLAIM - timedelta(minutes=1)
    )
    send_pending_emails.delay()
    assert wait_for(lambda: all_sent(3)), celery_workers.log_text()[-3000:]
    assert celery_workers.results(PENDING) == [2, 1]
    claimed.refresh_from_db()
    assert (claimed.status, claimed.attempts) == ("sent", 1)
    assert delivered(celery_workers.mail_dir) == expected()
    assert set(expected().values()) == {1} and sum(expected().values()) == 3
    assert delivery_statuses() == {"sent"}
    assert Reminder.objects.get(email=claimed).delivery_status == "sent"


@worker
def test_a_broker_down_while_the_sweep_commits_loses_nothing(
    world, celery_workers, monkeypatch, caplog
):
    enrol(world.bxp_patients[0]), enrol(world.str_patients[0])
    with monkeypatch.context() as outage:
        down = pools.producers[Connection(UNREACHABLE_BROKER)]
        outage.setattr(app.amqp, "_producer_pool", down)
        result = reminders_sweep(at=paris(OPENS_IN_7))  # commits; no error reaches the caller
        down.force_close_all()
    assert (result.recorded, result.emails) == (3, 3)
    assert "not queued (broker unavailable)" in caplog.text
    assert set(OutboundEmail.objects.values_list("status", "attempts")) == {("pending", 0)}
    assert delivery_statuses() == {"pending"}

    # The broker is back. The next sweep records nothing new and queues nothing twice...
    celery_workers.start("w1")
    again = reminders_sweep(at=paris(OPENS_IN_7, 8, 15))
    assert (again.recorded, again.emails) == (0, 0)
    # ...the beat task sends what waited more than a minute, once.
    OutboundEmail.objects.update(created_at=F("created_at") - timedelta(minutes=2))
    send_pending_emails.delay()
    assert wait_for(lambda: all_sent(3)), celery_workers.log_text()[-3000:]
    assert celery_workers.results(PENDING) == [3]
    assert celery_workers.results(BATCH) == []  # no batch of the sweep ever reached a worker
    assert delivered(celery_workers.mail_dir) == expected()
    assert set(expected().values()) == {1} and sum(expected().values()) == 3
    assert delivery_statuses() == {"sent"}


# -- a mail server that refuses connections (eager: the tasks run in this process) --------

REFUSED = "[Errno 111] Connection refused (smtp.example.org:25)"


@pytest.fixture
def smtp_down(settings, monkeypatch):
    """The mail server refuses every connection (`failures`: the first n only); each retry
    the tasks schedule is recorded with the email's row as it stands then."""
    settings.MAILERS = {"default": {"BACKEND": "tests.workers.SmtpDownBackend"}}
    monkeypatch.setattr(SmtpDownBackend, "failures", None)
    monkeypatch.setattr(SmtpDownBackend, "calls", 0)
    retries = []
    backoff = tasks._backoff

    def recorded_backoff(n: int) -> int:
        email = OutboundEmail.objects.get()
        retries.append((backoff(n), email.status, email.attempts, email.last_error))
        return backoff(n)

    monkeypatch.setattr(tasks, "_backoff", recorded_backoff)
    # Eager retries re-apply the task with the app's propagate setting: let them run.
    app.conf.task_eager_propagates = False
    yield SimpleNamespace(backend=SmtpDownBackend, retries=retries)
    app.conf.task_eager_propagates = True


def test_smtp_down_retries_with_backoff_then_the_reminder_shows_failed(
    world, smtp_down, client, fixed_clock
):
    patient = enrol(world.str_patients[0])  # one reminder: Charlie's
    reminders_sweep(at=paris(OPENS_IN_7))  # sent once the sweep commits
    # Back to pending after each failure, one attempt more, the error kept; 1, 1, 2, 4 min.
    assert smtp_down.retries == [
        (60, "pending", 1, REFUSED),
        (60, "pending", 2, REFUSED),
        (120, "pending", 3, REFUSED),
        (240, "pending", 4, REFUSED),
    ]
    email = OutboundEmail.objects.get()
    assert (email.status, email.attempts, email.last_error) == ("failed", MAX_ATTEMPTS, REFUSED)
    assert smtp_down.backend.calls == MAX_ATTEMPTS
    assert mail.outbox == []
    assert Reminder.objects.get().delivery_status == "failed"
    # Failed for good: the beat task does not take it up again.
    fixed_clock.shift(timedelta(minutes=30))
    assert send_pending_emails.delay().get() == 0

    client.force_login(world.diane)
    log = client.get("/studies/NCT00479934/reminders/?status=failed")
    assert log.status_code == 200
    assert [r.pk for r in log.context["page"]] == [Reminder.objects.get().pk]
    assert log.context["counts"]["failed"] == 1
    text = log.content.decode()
    assert patient.subject_code in text and REFUSED in text


def test_smtp_back_after_two_failures_sends_the_reminder_once(world, smtp_down):
    enrol(world.str_patients[0])
    smtp_down.backend.failures = 2
    reminders_sweep(at=paris(OPENS_IN_7))
    assert smtp_down.retries == [(60, "pending", 1, REFUSED), (60, "pending", 2, REFUSED)]
    email = OutboundEmail.objects.get()
    assert (email.status, email.attempts, email.last_error) == ("sent", 3, REFUSED)
    assert [(m.to, m.subject) for m in mail.outbox] == [(["charlie@example.org"], email.subject)]
    assert Reminder.objects.get().delivery_status == "sent"
