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


def test_the_expiry_is_written_at_most_once_a_minute_not_on_every_page(client, world, fixed_clock):
    from django.contrib.sessions.models import Session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    key = client.session.session_key
    url = reverse("studies:chooser")

    def expiry():
        return Session.objects.get(session_key=key).expire_date

    def in_30_minutes(at) -> bool:  # the test clock ticks on
        return abs(at - (timezone.now() + timedelta(minutes=30))) < timedelta(seconds=1)

    logged_in = expiry()
    assert in_30_minutes(logged_in)
    # Pages within the minute: the session row is read, never written.
    fixed_clock.shift(timedelta(seconds=30))
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert any(sql.startswith('SELECT "django_session"') for sql in statements)
    assert not any('UPDATE "django_session"' in sql for sql in statements)
    fixed_clock.shift(timedelta(seconds=29))
    client.get(url)
    assert expiry() == logged_in
    # A minute after the last write: pushed to 30 minutes from this page.
    fixed_clock.shift(timedelta(seconds=2))
    client.get(url)
    assert in_30_minutes(expiry())
