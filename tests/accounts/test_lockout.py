"""Lockout (21 CFR 11.300(d)): five wrong passwords in a row lock the account for 30 minutes.

Counted per username (never per address: a hospital's staff share one), recorded in the
audit trail, emailed to the administrators of the person's studies; an administrator may
unlock sooner, with a reason.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.exceptions import AxesBackendRequestParameterRequired
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from ecrf.accounts.lockout import administrators_of, locked_until
from ecrf.accounts.models import Role
from ecrf.accounts.services import account_unlock
from ecrf.audit.models import AuthEvent
from ecrf.notifications.models import OutboundEmail
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")


@pytest.fixture(autouse=True)
def _english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def adele(world):
    """Administrator of the trial (all sites), who is told of lockouts and may unlock."""
    user = UserFactory(username="adele", email="adele@chu-bordeaux.example")
    MembershipFactory(user=user, study=world.rct, site=None, role=Role.ADMIN)
    return user


def log_in(client, password, username="alice", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def lock_alice(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return [log_in(client, f"wrong {n}") for n in range(settings.AXES_FAILURE_LIMIT)]


def test_the_settings_lock_after_five_failures_for_thirty_minutes_by_username():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(minutes=30) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username"]


def test_five_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused(
    client, world, adele, django_capture_on_commit_callbacks
):
    responses = lock_alice(client, django_capture_on_commit_callbacks)
    # The first four show the login form again; the fifth locks.
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
    assert "Account locked" not in responses[3].content.decode()

    response = log_in(client, PASSWORD)
    assert response.status_code == 429
    assert not signed_in(client)
    body = response.content.decode()
    until = locked_until("alice")
    assert until is not None
    assert "This account is locked after 5 wrong passwords in a row." in body
    assert f"Try again after {timezone.localtime(until):%H:%M}" in body
    assert "ask your study's administrator to unlock it sooner" in body


def test_after_the_cool_off_the_right_password_logs_in(
    client, world, adele, fixed_clock, django_capture_on_commit_callbacks
):
    lock_alice(client, django_capture_on_commit_callbacks)
    fixed_clock.shift(timedelta(minutes=29))
    assert log_in(client, PASSWORD).status_code == 429
    assert not signed_in(client)
    fixed_clock.shift(timedelta(minutes=2))
    response = log_in(client, PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)
    # A successful login starts the count again: four more wrong passwords do not lock.
    client.post(reverse("logout"))
    assert [log_in(client, "wrong").status_code for _ in range(4)] == [200] * 4
    assert locked_until("alice") is None


def test_tries_while_locked_are_recorded_but_do_not_push_the_end(
    client, world, adele, fixed_clock, django_capture_on_commit_callbacks
):
    lock_alice(client, django_capture_on_commit_callbacks)
    until = locked_until("alice")
    fixed_clock.shift(timedelta(minutes=10))
    with django_capture_on_commit_callbacks(execute=True):
        assert log_in(client, "still wrong").status_code == 429
        assert log_in(client, PASSWORD).status_code == 429
    assert locked_until("alice") == until
    kinds = list(
        AuthEvent.objects.filter(username="alice").order_by("id").values_list("kind", flat=True)
    )
    assert kinds == ["login_failed"] * 5 + ["lockout"] + ["login_failed"] * 2
    # One lockout, one email: the refused tries tell nobody again.
    assert len(mail.outbox) == 1


def test_the_lock_is_per_username_not_per_address(
    client, world, adele, django_capture_on_commit_callbacks
):
    """Bob, at the same hospital behind the same address, still logs in."""
    lock_alice(client, django_capture_on_commit_callbacks)
    response = log_in(client, PASSWORD, username="bob")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(world.bob.pk)


def test_a_username_of_nobody_locks_too_and_tells_nobody(client, world, adele):
    responses = [log_in(client, "guess", username="ghost") for _ in range(5)]
    assert responses[-1].status_code == 429
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.LOCKOUT)
    assert (event.username, event.user_id) == ("ghost", None)
    assert not OutboundEmail.objects.exists()


def test_the_lockout_is_audited_and_emailed_to_the_administrators_of_the_users_studies(
    client, world, adele, django_capture_on_commit_callbacks
):
    # An administrator of the other study only is not told of Alice.
    other = UserFactory(username="otto", email="otto@example.org")
    MembershipFactory(user=other, study=world.cohort, site=None, role=Role.ADMIN)
    type(adele).objects.filter(pk=adele.pk).update(language="en")  # her email in English
    lock_alice(client, django_capture_on_commit_callbacks)

    event = AuthEvent.objects.get(kind=AuthEvent.Kind.LOCKOUT)
    assert (event.user_id, event.username, event.ip_address) == (
        world.alice.pk,
        "alice",
        "127.0.0.1",
    )
    assert administrators_of(world.alice) == [adele]
    email = OutboundEmail.objects.get(kind="account_lockout")
    assert email.status == OutboundEmail.Status.SENT
    (message,) = mail.outbox
    assert message.to == ["adele@chu-bordeaux.example"]
    assert message.subject == "[eCRF] Account locked: alice"
    assert "5 wrong passwords in a row (from 127.0.0.1)" in message.body
    assert "Studies: NCT00479934" in message.body
    assert settings.SITE_URL.rstrip("/") + reverse("locked_accounts") in message.body
    assert "%(" not in message.body


def test_the_email_is_in_each_administrators_language(
    client, world, adele, django_capture_on_commit_callbacks
):
    adele.language = "fr"
    adele.save(update_fields=["language"])
    second = UserFactory(username="amelie", email="amelie@example.org", language="en")
    MembershipFactory(user=second, study=world.rct, site=None, role=Role.ADMIN)
    lock_alice(client, django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mail.outbox) == [
        "adele@chu-bordeaux.example",
        "amelie@example.org",
    ]
    keys = set(OutboundEmail.objects.values_list("dedupe_key", flat=True))
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.LOCKOUT)
    assert keys == {
        f"account-lockout:{event.pk}:{adele.pk}",
        f"account-lockout:{event.pk}:{second.pk}",
    }


def test_without_a_study_administrator_the_superusers_are_told(world):
    root = UserFactory(username="root", email="root@example.org", is_superuser=True)
    loner = UserFactory(username="loner")
    assert administrators_of(loner) == [root]
    # Diane's studies have no administrator either in this world.
    assert administrators_of(world.diane) == [root]


# -- unlocking -------------------------------------------------------------------------------


def test_an_administrator_unlocks_with_a_reason_and_the_person_logs_in(
    client, world, adele, django_capture_on_commit_callbacks
):
    lock_alice(client, django_capture_on_commit_callbacks)
    forgotten = account_unlock(user=world.alice, by=adele, reason="Called back on the ward phone")
    assert forgotten == 1  # one attempt row: one address, one browser
    assert locked_until("alice") is None
    assert not AccessAttempt.objects.filter(username="alice").exists()
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.UNLOCK)
    assert (event.user_id, event.username, event.by_id, event.reason) == (
        world.alice.pk,
        "alice",
        adele.pk,
        "Called back on the ward phone",
    )
    assert log_in(client, PASSWORD).status_code == 302


def test_an_unlock_without_a_reason_is_refused(
    client, world, adele, django_capture_on_commit_callbacks
):
    lock_alice(client, django_capture_on_commit_callbacks)
    with pytest.raises(ValidationError) as refused:
        account_unlock(user=world.alice, by=adele, reason="   ")
    assert refused.value.message_dict == {
        "reason": ["Reason: say why the account is unlocked; it is kept in the audit trail."]
    }
    assert locked_until("alice") is not None
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.UNLOCK).exists()


@pytest.mark.parametrize("persona", ["bob", "monica", "diane", "charlie", "rene"])
def test_only_an_administrator_of_the_users_study_may_unlock(
    client, world, adele, persona, django_capture_on_commit_callbacks
):
    lock_alice(client, django_capture_on_commit_callbacks)
    with pytest.raises(PermissionDenied):
        account_unlock(user=world.alice, by=getattr(world, persona), reason="Asked nicely")
    assert locked_until("alice") is not None
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.UNLOCK).exists()


def test_an_administrator_of_another_study_may_not_unlock(
    client, world, django_capture_on_commit_callbacks
):
    other = UserFactory(username="otto")
    MembershipFactory(user=other, study=world.cohort, site=None, role=Role.ADMIN)
    lock_alice(client, django_capture_on_commit_callbacks)
    with pytest.raises(PermissionDenied):
        account_unlock(user=world.alice, by=other, reason="Asked nicely")
    assert locked_until("alice") is not None


def test_a_superuser_may_unlock_anyone_but_nobody_their_own_account(
    client, world, adele, django_capture_on_commit_callbacks
):
    root = UserFactory(username="root", is_superuser=True)
    lock_alice(client, django_capture_on_commit_callbacks)
    account_unlock(user=world.alice, by=root, reason="Identity checked in person")
    assert locked_until("alice") is None
    for _ in range(5):
        log_in(client, "wrong", username="adele")
    with pytest.raises(PermissionDenied, match="your own account"):
        account_unlock(user=adele, by=adele, reason="It is me")
    assert locked_until("adele") is not None


def test_an_account_that_is_not_locked_has_nothing_to_unlock(world, adele):
    with pytest.raises(ValidationError, match="alice is not locked"):
        account_unlock(user=world.alice, by=adele, reason="Just in case")
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.UNLOCK).exists()


# -- the unlock screen -----------------------------------------------------------------------


def test_the_screen_lists_the_locked_members_and_unlocks_with_a_reason(
    client, world, adele, django_capture_on_commit_callbacks
):
    lock_alice(client, django_capture_on_commit_callbacks)
    for _ in range(5):
        log_in(client, "wrong", username="rene")  # another study's: not Adele's to unlock
    client.force_login(adele)
    url = reverse("locked_accounts")
    page = client.get(url)
    assert page.status_code == 200
    assert [a.user.username for a in page.context["accounts"]] == ["alice"]
    assert "no-store" in page["Cache-Control"]

    refused = client.post(url, {"username": "alice", "reason": ""})
    assert refused.status_code == 400
    assert refused.context["form"].errors == {"reason": ["This field is required."]}
    assert locked_until("alice") is not None

    done = client.post(url, {"username": "alice", "reason": "Called back on the ward phone"})
    assert done.status_code == 302
    assert locked_until("alice") is None
    assert AuthEvent.objects.get(kind=AuthEvent.Kind.UNLOCK).reason == (
        "Called back on the ward phone"
    )
    assert client.get(url).context["accounts"] == []


def test_the_screen_is_refused_to_whoever_unlocks_nobody(client, world):
    client.force_login(world.diane)
    assert client.get(reverse("locked_accounts")).status_code == 403
    client.logout()
    assert client.get(reverse("locked_accounts")).status_code == 302


def test_the_study_chooser_links_administrators_to_the_screen(client, world, adele):
    client.force_login(adele)
    assert reverse("locked_accounts") in client.get(reverse("studies:chooser")).content.decode()
    client.force_login(world.alice)
    assert reverse("locked_accounts") not in client.get(reverse("studies:chooser")).content.decode()


def test_the_screen_says_so_when_the_lockout_ended_meanwhile(
    client, world, adele, fixed_clock, django_capture_on_commit_callbacks
):
    lock_alice(client, django_capture_on_commit_callbacks)
    fixed_clock.shift(timedelta(minutes=31))
    client.force_login(adele)
    response = client.post(reverse("locked_accounts"), {"username": "alice", "reason": "Asked"})
    assert response.status_code == 400
    assert "Account: alice is not locked; there is nothing to unlock." in response.content.decode()
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.UNLOCK).exists()


def test_authenticate_without_a_request_is_refused_rather_than_left_uncounted(world):
    """axes counts failures per request: a caller that gives none is an error, not a way
    around the lockout (the tests log in through the login page or force_login)."""
    with pytest.raises(AxesBackendRequestParameterRequired):
        authenticate(username="alice", password=PASSWORD)
