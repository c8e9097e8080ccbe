"""Real Celery workers for the tests marked `worker`: processes started by the test.

Each worker is `celery -A ecrf worker --pool=solo` against the Redis broker the suite is
given (CELERY_BROKER_URL), on a queue of its own for the test, on the test database (the
URL is passed to it), writing the messages it sends to a directory with Django's
file-based backend. The fixtures `redis_worker` (one worker) and `racing_workers` (two on
one queue) are made available to every test by tests/conftest.py; `celery_workers` starts
and kills them one by one.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection

from ecrf.celery import app

FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
# The separator Django's file-based backend writes after each message (several messages may
# share a file: the file is named after the second and the backend object).
_SEPARATOR = b"\n" + b"-" * 79 + b"\n"


def worker_database_url() -> str:
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


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def sent_messages(mail_dir: Path) -> list[EmailMessage]:
    """Every message the file-based backend wrote under `mail_dir`, parsed (headers decoded)."""
    if not mail_dir.exists():
        return []
    messages = []
    for path in sorted(mail_dir.iterdir()):
        for chunk in path.read_bytes().split(_SEPARATOR):
            if chunk.strip():
                messages.append(message_from_bytes(chunk.lstrip(b"\n"), policy=policy.default))
    return messages


def header(message: EmailMessage, name: str) -> str:
    """A header's value on one line (a long subject is folded, at times right after the
    colon: the continuation's indent is no part of it)."""
    unfolded = re.sub(r"[ \t]*[\r\n]+[ \t]*", " ", str(message[name] or ""))
    return re.sub(r"[ \t]{2,}", " ", unfolded).strip()  # French no-break spaces kept


def sent_subjects(mail_dir: Path) -> list[str]:
    return [header(message, "Subject") for message in sent_messages(mail_dir)]


_TASK_DONE = re.compile(r"Task (?P<task>[\w.]+)\[[^\]]+\] succeeded in [\d.e-]+s: (?P<result>.*)$")


class StalledBackend(BaseEmailBackend):
    """A mail server that never answers: the send hangs until the worker is killed."""

    def send_messages(self, email_messages):
        time.sleep(3600)
        return 0


class SmtpDownBackend(LocmemBackend):
    """An SMTP server that refuses connections: the first `failures` sends raise
    ConnectionError (every send while `failures` is None), the next ones reach the
    locmem outbox (`django.core.mail.outbox`). Counted across instances: Django builds a
    backend per message."""

    failures: int | None = None
    calls = 0

    def send_messages(self, email_messages):
        cls = type(self)
        cls.calls += 1
        if cls.failures is None or cls.calls <= cls.failures:
            raise ConnectionError("[Errno 111] Connection refused (smtp.example.org:25)")
        return super().send_messages(email_messages)


@dataclass
class _Worker:
    process: subprocess.Popen
    log_path: Path
    log: object


@dataclass
class CeleryWorkers:
    """Worker processes on one queue of the Redis broker, started and stopped by a test."""

    tmp_path: Path
    broker: str
    queue: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:10]}")
    workers: dict[str, _Worker] = field(default_factory=dict)

    @property
    def mail_dir(self) -> Path:
        return self.tmp_path / "mail"

    @property
    def logs(self) -> list[Path]:
        return [w.log_path for w in self.workers.values()]

    def start(self, name: str = "w1", *, email_backend: str = FILE_BACKEND, ready: bool = True):
        """One more worker on the queue; with `ready`, once it consumes (the log says so)."""
        env = {
            **os.environ,
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": self.broker,
            "CELERY_QUEUE": self.queue,
            "EMAIL_BACKEND": email_backend,
            "EMAIL_FILE_PATH": str(self.mail_dir),
            "DEBUG": "1",
        }
        log_path = self.tmp_path / f"worker-{name}.log"
        log = log_path.open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "ecrf", "worker", "--pool=solo",
             "-Q", self.queue, "-n", f"{name}-{self.queue}@%h",
             "--without-gossip", "--without-mingle", "--loglevel=INFO"],
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers[name] = _Worker(process, log_path, log)
        if ready:
            assert wait_for(lambda: " ready." in log_path.read_text(), timeout=90), (
                f"worker {name} did not start: {log_path.read_text()[-2000:]}"
            )
        return log_path

    def kill(self, name: str) -> None:
        """SIGKILL, as the kernel's OOM killer or a lost machine would: no clean-up at all."""
        worker = self.workers[name]
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=30)

    def log_text(self) -> str:
        return "\n".join(path.read_text() for path in self.logs)

    def results(self, task: str) -> list:
        """What the workers logged as the results of `task` (a dotted name), in log order."""
        found = []
        for line in self.log_text().splitlines():
            match = _TASK_DONE.search(line)
            if match and match["task"] == task:
                found.append(ast.literal_eval(match["result"]))
        return found

    def stop(self) -> None:
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.terminate()
        for name, worker in self.workers.items():
            worker.process.wait(timeout=30)
            worker.log.close()
            if worker.process.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL):
                print(f"worker {name}:\n{worker.log_path.read_text()}")
        _forget_queue(self.broker, self.queue)


def _forget_queue(broker: str, queue: str) -> None:
    """Remove what the test's queue left in Redis: its list, its bindings, the remote-control
    binding of a killed worker (a worker stopped cleanly removes its own), and the messages
    a killed worker held unacknowledged (which a later worker would restore to it)."""
    import redis

    client = redis.Redis.from_url(broker)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    pidbox = "_kombu.binding.celery.pidbox"
    for member in client.smembers(pidbox):
        if f"-{queue}@".encode() in member:
            client.srem(pidbox, member)
    for tag, payload in client.hgetall("unacked").items():
        try:
            _message, _exchange, routing_key = json.loads(payload)
        except (ValueError, TypeError):
            continue
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.fixture
def celery_workers(tmp_path) -> Iterator[CeleryWorkers]:
    """No worker yet: the test starts them (`start`), and may kill one (`kill`). Tasks the
    test process sends go to their queue, through the broker (not eager)."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    assert broker.startswith("redis://"), (
        "the worker tests need CELERY_BROKER_URL=redis://...; `make test` sets it"
    )
    workers = CeleryWorkers(tmp_path, broker)
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = workers.queue
    try:
        yield workers
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
        workers.stop()


@pytest.fixture
def redis_worker(celery_workers) -> Path:
    """One worker; the directory its messages are written to."""
    celery_workers.start("solo", ready=False)  # messages wait in the queue meanwhile
    return celery_workers.mail_dir


@pytest.fixture
def racing_workers(celery_workers) -> tuple[Path, list[Path]]:
    """Two solo workers consuming one queue, both ready before the test dispatches: the
    messages directory and their two logs."""
    celery_workers.start("race1")
    celery_workers.start("race2")
    return celery_workers.mail_dir, celery_workers.logs
