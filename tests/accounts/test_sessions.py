"""Idle sessions expire after 30 minutes (21 CFR 11.300); every request pushes the expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_an_idle_session_expires_after_30_minutes_and_each_request_pushes_it(
    client, world, fixed_clock
):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    # Through the login page: authenticate() needs the request (axes counts failures per
    # request), which client.login() does not give.
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert client.session["_auth_user_id"] == str(world.alice.pk)
    url = reverse("studies:chooser")
    for _ in range(3):  # an hour and a half of work, never 30 minutes idle
        fixed_clock.shift(timedelta(minutes=29))
        assert client.get(url).status_code == 200
    fixed_clock.shift(timedelta(minutes=31))
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse(settings.LOGIN_URL))
