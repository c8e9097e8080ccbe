"""A refused request is logged once, as one line without a traceback."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse


def emitting_handlers(name: str) -> list[logging.Handler]:
    """The handlers a record of this logger reaches, pytest's capture left out."""
    handlers, logger = [], logging.getLogger(name)
    while logger is not None:
        handlers += [h for h in logger.handlers if "LogCaptureHandler" not in type(h).__name__]
        logger = logger.parent if logger.propagate else None
    return handlers


@pytest.mark.django_db
def test_a_403_is_logged_once_without_a_traceback(client, world, caplog):
    client.force_login(world.monica)  # a monitor may not screen patients
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(reverse("patients:create", args=[world.rct.code]))
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    assert records[0].getMessage().startswith("Forbidden (Permission denied): ")
    assert records[0].exc_info is None
    # Django's own console handler is gone: root's is the one that prints it.
    assert not logging.getLogger("django").handlers


@pytest.mark.django_db
def test_a_one_site_dropdown_is_preselected_with_no_empty_choice(client, world):
    client.force_login(world.alice)
    response = client.get(reverse("patients:create", args=[world.rct.code]))
    field = response.context["form"]["site"]
    assert [str(choice[1]) for choice in field.field.choices] == [str(world.bxp)]
    assert '<option value="BXP" selected>' in response.content.decode()
