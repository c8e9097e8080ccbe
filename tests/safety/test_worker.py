"""SAE notifications through real Celery workers against Redis: one message, however delivered.

The worker harness is tests/workers.py: `redis_worker` (one worker), `racing_workers` (two
workers on one queue).
"""

from __future__ import annotations

import re

import pytest

from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.tasks import send_email
from ecrf.safety.services import ae_create, sae_submit_initial
from tests.safety.conftest import sae_values
from tests.workers import sent_subjects, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SUCCEEDED = re.compile(
    r"Task ecrf\.notifications\.tasks\.send_email\[[^\]]+\] succeeded .*: '([a-z-]+)'"
)


def test_real_worker_sends_the_sae_report_once_when_the_task_is_delivered_twice(
    world, serious_event, password, redis_worker
):
    mail_dir = redis_worker
    report = sae_submit_initial(
        report=serious_event.sae_reports.get(), by=world.alice, password=password
    )
    email = report.notification.email
    assert wait_for(lambda: OutboundEmail.objects.get(pk=email.pk).status == "sent"), (
        "the worker did not send the SAE report within 60 s"
    )
    # A redelivery, then a second SAE report as a marker that the queue was worked through.
    send_email.delay(email.pk)
    syncope = ae_create(
        patient=serious_event.patient, by=world.alice, values=sae_values(term="Syncope")
    )
    second = sae_submit_initial(report=syncope.sae_reports.get(), by=world.alice, password=password)
    marker = second.notification.email
    assert wait_for(lambda: OutboundEmail.objects.get(pk=marker.pk).status == "sent")
    subjects = sent_subjects(mail_dir)
    assert subjects.count(email.subject) == 1
    assert subjects.count(marker.subject) == 1
    email.refresh_from_db()
    assert email.attempts == 1


def test_two_workers_racing_on_one_sae_report_send_it_once(
    world, serious_event, password, racing_workers
):
    mail_dir, logs = racing_workers
    report = sae_submit_initial(
        report=serious_event.sae_reports.get(), by=world.alice, password=password
    )
    email = report.notification.email
    # The commit queued one delivery; five more as a broker redelivering after a crash would.
    for _ in range(5):
        send_email.delay(email.pk)

    def outcomes() -> list[str]:
        return [m for p in logs for m in SUCCEEDED.findall(p.read_text())]

    assert wait_for(lambda: len(outcomes()) == 6, timeout=90), outcomes()
    assert sorted(outcomes()) == ["already-claimed"] * 5 + ["sent"]
    # Both workers took deliveries: the claim, not luck, kept it to one message.
    assert all(SUCCEEDED.search(p.read_text()) for p in logs)
    assert sent_subjects(mail_dir) == [email.subject]
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 1)
