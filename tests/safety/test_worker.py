"""SAE notifications through real Celery workers against Redis: one message, however delivered.

Reuses the harness of tests/notifications/test_worker.py (its worker environment and
`redis_worker` fixture); the race starts two workers on one queue the same way.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from ecrf.celery import app
from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.tasks import send_email
from ecrf.safety.services import ae_create, sae_submit_initial
from tests.notifications.test_worker import _test_database_url, _wait_for
from tests.notifications.test_worker import redis_worker as redis_worker  # noqa: F401
from tests.safety.conftest import sae_values

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SUCCEEDED = re.compile(
    r"Task ecrf\.notifications\.tasks\.send_email\[[^\]]+\] succeeded .*: '([a-z-]+)'"
)


def sent_subjects(mail_dir: Path) -> list[str]:
    if not mail_dir.exists():
        return []
    text = "\n".join(path.read_text() for path in sorted(mail_dir.iterdir()))
    return re.findall(r"^Subject: (.*)$", text, flags=re.MULTILINE)


@pytest.fixture
def racing_workers(tmp_path):
    """Two solo workers consuming one Redis queue, both ready before the test dispatches."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    assert broker.startswith("redis://"), "the worker tests need CELERY_BROKER_URL=redis://..."
    queue = f"test-race-{uuid.uuid4().hex[:10]}"
    mail_dir = tmp_path / "mail"
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_QUEUE": queue,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "DEBUG": "1",
    }
    logs = [tmp_path / f"worker{i}.log" for i in (1, 2)]
    workers = []
    for i, log_path in enumerate(logs, start=1):
        log = log_path.open("w")
        workers.append(
            (
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "ecrf",
                        "worker",
                        "--pool=solo",
                        "-Q",
                        queue,
                        "-n",
                        f"race{i}-{queue}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel=INFO",
                    ],
                    cwd=settings.BASE_DIR,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),  # fmt: skip
                log,
            )
        )
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    try:
        assert _wait_for(lambda: all(" ready." in p.read_text() for p in logs), timeout=90), (
            "the workers did not start: " + " / ".join(p.read_text()[-2000:] for p in logs)
        )
        yield mail_dir, logs
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
        for process, _log in workers:
            process.terminate()
        for process, log in workers:
            process.wait(timeout=30)
            log.close()


def test_real_worker_sends_the_sae_report_once_when_the_task_is_delivered_twice(
    world, serious_event, password, redis_worker
):
    mail_dir = redis_worker
    report = sae_submit_initial(
        report=serious_event.sae_reports.get(), by=world.alice, password=password
    )
    email = report.notification.email
    assert _wait_for(lambda: OutboundEmail.objects.get(pk=email.pk).status == "sent"), (
        "the worker did not send the SAE report within 60 s"
    )
    # A redelivery, then a second SAE report as a marker that the queue was worked through.
    send_email.delay(email.pk)
    syncope = ae_create(
        patient=serious_event.patient, by=world.alice, values=sae_values(term="Syncope")
    )
    second = sae_submit_initial(report=syncope.sae_reports.get(), by=world.alice, password=password)
    marker = second.notification.email
    assert _wait_for(lambda: OutboundEmail.objects.get(pk=marker.pk).status == "sent")
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

    assert _wait_for(lambda: len(outcomes()) == 6, timeout=90), outcomes()
    assert sorted(outcomes()) == ["already-claimed"] * 5 + ["sent"]
    # Both workers took deliveries: the claim, not luck, kept it to one message.
    assert all(SUCCEEDED.search(p.read_text()) for p in logs)
    assert sent_subjects(mail_dir) == [email.subject]
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 1)
