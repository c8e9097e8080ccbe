"""`make demo`: prepare the database, then run the web server, a Celery worker and beat.

As in production, two database roles (`setup_db_roles`): migrate runs as the owner, and
the demo data, the web server and the worker as the application role, which cannot change
or erase the audit trail. That needs a superuser to create them, as the embedded
PostgreSQL's is; a DATABASE_URL naming another role is used as it is, for everything.

Ctrl-C (or SIGTERM) stops the children, waits for them, and stops the embedded
PostgreSQL when this command is the one using it.
"""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404  # starts its own children only
import sys
import time
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection

from ecrf import embedded_pg
from ecrf.audit.roles import role_names


def url_as(url: str, user: str, password: str = "") -> str:  # nosec B107  # no password: none
    """The database URL with another role's name and password."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(
        parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}")
    )


def connect_as(user: str, password: str) -> None:
    """From the next query on, this process's connection is `user`'s."""
    connection.close()
    connection.settings_dict.update(USER=user, PASSWORD=password)


class Command(BaseCommand):
    help = "Migrate, load both protocols, create demo data, and serve on 127.0.0.1:8000."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr, **options):
        # DEBUG is off, as in production: whitenoise serves the collected, hashed files.
        call_command("collectstatic", interactive=False, verbosity=0)
        environ = dict(os.environ)
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            superuser = cursor.fetchone()[0]
        if superuser:
            call_command("setup_db_roles")
            owner, app = role_names()
            app_password = os.environ.get("DB_APP_PASSWORD", "")
            connect_as(owner, os.environ.get("DB_OWNER_PASSWORD", ""))
            call_command("migrate", interactive=False, verbosity=0)
            connect_as(app, app_password)
            environ["DATABASE_URL"] = url_as(settings.DATABASE_URL, app, app_password)
        else:
            call_command("migrate", interactive=False, verbosity=0)
        call_command("load_protocol", all=True)
        # The broker's folders first: the demo data queues emails (SAE reports).
        for folder in ("celery/queue", "celery/processed", "celery/control", "mail"):
            (settings.VAR_DIR / folder).mkdir(parents=True, exist_ok=True)
        call_command("seed_demo")

        python = sys.executable
        children = [
            subprocess.Popen(  # nosec B603  # fixed argv
                [python, "manage.py", "runserver", addr, "--noreload"], env=environ
            ),
            subprocess.Popen(  # nosec B603  # fixed argv
                [
                    python, "-m", "celery", "-A", "ecrf", "worker", "--beat",
                    "--loglevel=INFO", "--concurrency=2",
                    "--schedule", str(settings.VAR_DIR / "celerybeat-schedule"),
                ],
                env=environ,
            ),
        ]  # fmt: skip
        self.stdout.write(
            self.style.SUCCESS(
                f"eCRF demo on http://{addr}/ (worker and beat running as database role "
                f"{connection.settings_dict['USER']}; "
                f"broker {settings.CELERY_BROKER_URL.split('://')[0]}; "
                f"emails in {settings.MAILERS['default']['OPTIONS'].get('file_path', 'SMTP')}). "
                "Ctrl-C stops everything."
            )
        )
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
            if not os.environ.get("DATABASE_URL"):
                embedded_pg.stop()
            self.stdout.write("Stopped.")
