"""The demo's data, seeded once for the module and rolled back afterwards (as tests/demo
does): both studies, corrected values, derived scores, repeated Sclero-JAK cultures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.files.storage import storages
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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """This package's transactional tests (a real Celery worker) run before its others: the
    seed's transaction (`_seeded_once`) stays open until the package ends, and a worker, in
    another process, would not see what such a test commits inside it."""
    here = Path(__file__).parent

    def transactional(item) -> bool:
        marker = item.get_closest_marker("django_db")
        return bool(marker and marker.kwargs.get("transaction"))

    positions = [i for i, item in enumerate(items) if here in Path(item.path).parents]
    if not positions:
        return
    mine = [items[i] for i in positions]
    ordered = [item for item in mine if transactional(item)] + [
        item for item in mine if not transactional(item)
    ]
    for position, item in zip(positions, ordered, strict=True):
        items[position] = item


@pytest.fixture
def export_storage(settings, tmp_path):
    """The exports storage (the screen's zips) in a folder of the test's own."""
    location = tmp_path / "exports-storage"
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    assert storages["exports"].location == str(location)
    return location
