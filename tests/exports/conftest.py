"""The demo's data, seeded once for the module and rolled back afterwards (as tests/demo
does): both studies, corrected values, derived scores, repeated Sclero-JAK cultures."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from tests.clock import NOW_UTC


@pytest.fixture(scope="package")
def _seeded_once(django_db_setup, django_db_blocker, tmp_path_factory):
    mailer = {
        "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "OPTIONS": {"file_path": str(tmp_path_factory.mktemp("mail"))},
    }
    with (
        time_machine.travel(NOW_UTC - timedelta(minutes=30), tick=True),
        override_settings(MAILERS={"default": mailer}),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
        yield
        transaction.set_rollback(True)


@pytest.fixture
def seeded(_seeded_once, db):
    return None
