"""A token's life: created hashed, used, expired, revoked; the second factor its owner's role
needs; the session for the browsable pages; the rate limit per token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from ecrf.api.auth import TokenRateThrottle
from ecrf.api.models import ApiToken
from ecrf.api.tokens import key_hash, token_create, token_revoke
from ecrf.audit.models import AuthEvent
from tests.api.conftest import Api
from tests.two_factor import login_unverified, totp_device

pytestmark = pytest.mark.django_db

STUDIES = "/api/v1/studies/"


def refused(response) -> str:
    assert response.status_code == 401, response.content
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    return response.json()["detail"]


def test_the_key_is_shown_once_and_stored_as_its_hash(world):
    token, key = token_create(user=world.alice, name="nightly pull", days=30)
    assert key.startswith("ecrf_") and len(key) > 40
    row = ApiToken.objects.get(pk=token.pk)
    assert (row.key_hash, row.prefix) == (key_hash(key), key[:12])
    assert key not in {str(v) for v in ApiToken.objects.values().get(pk=token.pk).values()}
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.API_TOKEN_CREATED)
    assert (event.user, event.reason) == (world.alice, f"API token “nightly pull” ({key[:12]}…)")
    response = Api(key).get(STUDIES)
    assert response.json()["results"][0]["code"] == world.rct.code
    assert "no-store" in response["Cache-Control"]  # study data: never kept by a cache


def test_a_token_records_its_last_use_once_a_minute(world, fixed_clock):
    token, key = token_create(user=world.alice, name="pipeline", days=30)
    assert token.last_used_at is None
    api = Api(key)
    api.get(STUDIES)
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    fixed_clock.shift(timedelta(seconds=30))
    api.get(STUDIES)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    fixed_clock.shift(timedelta(seconds=31))
    api.get(STUDIES)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_expired_revoked_unknown_or_missing_tokens_are_a_401_saying_which(world, fixed_clock):
    token, key = token_create(user=world.alice, name="short", days=1)
    fixed_clock.shift(timedelta(days=1, seconds=1))
    assert "expired" in refused(Api(key).get(STUDIES))
    token, key = token_create(user=world.alice, name="revoked", days=30)
    token_revoke(token=token, by=world.alice)
    assert "revoked" in refused(Api(key).get(STUDIES))
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.API_TOKEN_REVOKED).count() == 1
    token_revoke(token=token, by=world.alice)  # twice: nothing more
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.API_TOKEN_REVOKED).count() == 1
    assert "not known" in refused(Api("ecrf_" + "x" * 43).get(STUDIES))
    assert refused(Client().get(STUDIES))
    assert "Bearer" in refused(Client(HTTP_AUTHORIZATION="Bearer a b").get(STUDIES))


def test_only_the_owner_revokes_a_token(world):
    token, key = token_create(user=world.alice, name="mine", days=30)
    with pytest.raises(PermissionDenied):
        token_revoke(token=token, by=world.charlie)
    assert Api(key).get(STUDIES).status_code == 200


def test_a_deactivated_account_s_tokens_are_refused(world):
    _token, key = token_create(user=world.alice, name="mine", days=30)
    world.alice.is_active = False
    world.alice.save()
    assert "deactivated" in refused(Api(key).get(STUDIES))


@pytest.mark.parametrize(
    ("name", "days", "field"),
    [("", 30, "name"), ("   ", 30, "name"), ("x" * 101, 30, "name"), ("ok", 0, "days"),
     ("ok", 366, "days"), ("ok", True, "days")],
)  # fmt: skip
def test_a_token_needs_a_name_and_a_validity_within_the_limit(world, name, days, field):
    with pytest.raises(ValidationError) as error:
        token_create(user=world.alice, name=name, days=days)
    assert list(error.value.message_dict) == [field]
    assert not ApiToken.objects.exists()


def test_two_live_tokens_may_not_share_a_name(world):
    token, _key = token_create(user=world.alice, name="pull", days=30)
    with pytest.raises(ValidationError) as error:
        token_create(user=world.alice, name="pull", days=30)
    assert error.value.message_dict == {"name": ["You already have a token of that name."]}
    token_revoke(token=token, by=world.alice)
    token_create(user=world.alice, name="pull", days=30)  # the revoked one's name is free


def test_monitors_data_managers_and_administrators_need_a_second_factor(world):
    with pytest.raises(PermissionDenied):
        token_create(user=world.monica, name="review", days=30)
    device = totp_device(world.monica)
    _token, key = token_create(user=world.monica, name="review", days=30)
    assert Api(key).get(STUDIES).status_code == 200
    device.delete()  # an administrator's reset of a lost phone
    assert "two-factor" in refused(Api(key).get(STUDIES))
    assert not TOTPDevice.objects.filter(user=world.monica).exists()


def test_the_session_works_for_the_browsable_pages_once_its_second_factor_is_given(world):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    login_unverified(client, world.monica)
    response = client.get(STUDIES)
    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"]
    client.force_login(world.monica)  # with the second factor
    assert client.get(STUDIES).json()["results"][0]["code"] == world.rct.code
    investigator = Client()
    login_unverified(investigator, world.alice)  # site staff: the factor is optional
    assert investigator.get(STUDIES).status_code == 200


def test_too_many_calls_are_a_429_for_that_token_only(world, monkeypatch):
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"api": "3/min"})
    _token, key = token_create(user=world.alice, name="busy", days=30)
    _token, other = token_create(user=world.alice, name="calm", days=30)
    busy = Api(key)
    assert [busy.get(STUDIES).status_code for _ in range(3)] == [200, 200, 200]
    response = busy.get(STUDIES)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "throttled" in response.json()["detail"].lower()
    assert Api(other).get(STUDIES).status_code == 200
