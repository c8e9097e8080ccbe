"""A real Celery worker, started by the test against Redis, running the email task end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, transaction

from ecrf.celery import app
from ecrf.notifications.models import OutboundEmail
from ecrf.notifications.services import email_queue
from ecrf.notifications.tasks import send_email

BASE_DIR = Path(settings.BASE_DIR)


def _test_database_url() -> str:
    """The test database, for a worker process: on the same server as this process.

    The embedded PostgreSQL listens on a Unix socket under ./var: dj-database-url keeps
    its directory (`?host=/...`) in OPTIONS, not in HOST, and the worker must be given it.
    """
    db = connection.settings_dict
    host = db["HOST"] or db.get("OPTIONS", {}).get("host", "")
    user = quote(db["USER"] or "postgres", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    name = quote(db["NAME"], safe="")
    if host.startswith("/"):  # a socket directory
        return f"postgres://{user}{password}@{port}/{name}?host={quote(host, safe='')}"
    return f"postgres://{user}{password}@{host}{port}/{name}"


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def redis_worker(tmp_path):
    broker = os.environ.get("CELERY_BROKER_URL", "")
    assert broker.startswith("redis://"), (
        "the worker test needs CELERY_BROKER_URL=redis://...; `make test` sets it"
    )
    queue = f"test-{uuid.uuid4().hex[:10]}"
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
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ecrf", "worker", "--pool=solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    try:
        yield mail_dir
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
        if worker.returncode not in (0, -15):
            print((tmp_path / "worker.log").read_text())


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
    assert _wait_for(
        lambda: OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENT
    ), "the worker did not send the email within 60 s"

    # The task delivered twice (a redelivery after a worker restart looks like this)
    # finds the row already claimed and sends nothing.
    send_email.delay(email.pk)
    marker = _queue("worker-test-2", "Marker notification")
    assert _wait_for(
        lambda: OutboundEmail.objects.get(pk=marker.pk).status == OutboundEmail.Status.SENT
    )
    sent = "\n".join(path.read_text() for path in sorted(mail_dir.iterdir()))
    assert sent.count("Subject: First notification") == 1
    assert sent.count("Subject: Marker notification") == 1
    email.refresh_from_db()
    assert email.attempts == 1
    assert email.sent_at is not None
