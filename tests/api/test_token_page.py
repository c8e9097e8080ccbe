"""A person's API tokens on their profile (/profile/api-tokens/): the list, a new token whose
key is shown once, a refused creation that keeps what was typed, and revoking one's own.

Alice (investigator at BXP) makes the tokens; Charlie (STR) must not touch hers; Diane (data
manager) needs her authenticator app for tokens as for the screens.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from ecrf.api.models import ApiToken
from ecrf.api.tokens import key_hash, token_create
from ecrf.audit.models import AuthEvent
from tests.core.test_production import assert_no_inline_code
from tests.two_factor import login_unverified

pytestmark = pytest.mark.django_db

URL = "/profile/api-tokens/"
STUDIES_API = "/api/v1/studies/"
# The session and its user; the roles (the two-factor middleware asks whether the
# account needs a second factor); the tokens.
PAGE_QUERIES = 4


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def revoke_url(token) -> str:
    return reverse("api_token_revoke", args=[token.pk])


def create(client, name="nightly pull", days="90"):
    return client.post(URL, {"name": name, "days": days}, HTTP_USER_AGENT="pytest browser")


def studies_with(client, key):
    return client.get(STUDIES_API, HTTP_AUTHORIZATION="Bearer " + key)


def input_tag(body: str, name: str) -> str:
    return re.search(rf'<input[^>]*name="{name}"[^>]*>', body).group(0)


def test_the_page_is_at_profile_api_tokens_and_needs_a_login(client, world):
    assert reverse("api_tokens") == URL
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response.url


def test_the_profile_page_links_the_tokens(client, world):
    client.force_login(world.alice)
    body = client.get(reverse("reminders:settings")).content.decode()
    assert f'href="{URL}"' in body


def test_an_empty_page_offers_the_form_with_90_days(client, world):
    client.force_login(world.alice)
    response = client.get(URL)
    body = response.content.decode()
    assert response.context["tokens"] == []
    assert "You have no API token yet." in body
    assert 'value="90"' in input_tag(body, "days")
    assert f'max="{settings.API_TOKEN_MAX_DAYS}"' in input_tag(body, "days")
    assert 'data-testid="token-key"' not in body
    assert f'href="{reverse("api:docs")}"' in body
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_new_key_is_shown_once_works_and_only_its_hash_is_stored(client, world):
    client.force_login(world.alice)
    response = create(client)
    assert response.status_code == 200  # the key is on this response, not behind a redirect
    assert "no-store" in response["Cache-Control"]
    key = response.context["key"]
    assert key.startswith("ecrf_") and len(key) == 48
    body = response.content.decode()
    assert body.count(key) == 1
    assert re.search(r'data-testid="token-key">' + re.escape(key) + "<", body)
    assert "Copy it now: it is shown only this once" in body
    assert "Authorization: Bearer &lt;key&gt;" in body
    assert "http://testserver/api/v1/studies/" in body
    assert 'value="90"' in input_tag(body, "days")  # a fresh form for the next one
    assert 'value="nightly pull"' not in input_tag(body, "name")
    assert not list(response.context["messages"])

    (token,) = ApiToken.objects.filter(user=world.alice)
    assert token.name == "nightly pull"
    assert token.key_hash == key_hash(key) and token.prefix == key[:12]
    stored = [str(getattr(token, f.attname)) for f in ApiToken._meta.concrete_fields]
    assert not any(key in value for value in stored)
    assert token.expires_at - token.created_at == pytest.approx(
        timedelta(days=90), abs=timedelta(seconds=5)
    )
    assert key not in str(dict(client.session))

    api = studies_with(client, key)
    assert api.status_code == 200
    assert [s["code"] for s in api.json()["results"]] == [world.rct.code]

    reloaded = client.get(URL)
    page = reloaded.content.decode()
    assert key not in page and 'data-testid="token-key"' not in page
    assert reloaded.context["tokens"] == [token]
    row = re.search(rf'<tr data-testid="token-{token.pk}">.*?</tr>', page, re.S).group(0)
    assert "nightly pull" in row
    assert f"{key[:12]}…" in row
    assert ">live<" in row
    assert "never" not in row  # used once, by the call above
    assert f'data-testid="revoke-{token.pk}"' in row


def test_a_creation_is_an_account_event_with_the_browser(client, world):
    client.force_login(world.alice)
    key = create(client).context["key"]
    (event,) = AuthEvent.objects.filter(kind=AuthEvent.Kind.API_TOKEN_CREATED)
    assert (event.user, event.by) == (world.alice, None)
    assert event.user_agent == "pytest browser"
    assert event.reason == f"API token “nightly pull” ({key[:12]}…)"


def test_the_list_shows_each_status_newest_first(client, world, fixed_clock):
    live, _ = token_create(user=world.alice, name="live one", days=30)
    fixed_clock.shift(timedelta(minutes=1))
    revoked, _ = token_create(user=world.alice, name="revoked one", days=30)
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    fixed_clock.shift(timedelta(minutes=1))
    expired, _ = token_create(user=world.alice, name="expired one", days=1)
    fixed_clock.shift(timedelta(days=2))
    token_create(user=world.charlie, name="charlie's", days=30)
    client.force_login(world.alice)
    response = client.get(URL)
    assert [t.name for t in response.context["tokens"]] == [
        "expired one",
        "revoked one",
        "live one",
    ]
    body = response.content.decode()
    assert "charlie's" not in body
    for token, status in ((live, "live"), (revoked, "revoked"), (expired, "expired")):
        row = re.search(rf'<tr data-testid="token-{token.pk}">.*?</tr>', body, re.S).group(0)
        assert 'data-testid="status"><span class="badge text-bg-' in row
        assert f">{status}</span>" in row
        assert (f'data-testid="revoke-{token.pk}"' in row) is (status == "live")


def test_revoking_refuses_the_key_from_then_on(client, world):
    client.force_login(world.alice)
    key = create(client).context["key"]
    token = ApiToken.objects.get(user=world.alice)
    response = client.post(revoke_url(token), HTTP_USER_AGENT="pytest browser")
    assert response.status_code == 302 and response.url == URL
    token.refresh_from_db()
    assert token.revoked_at is not None

    refused = studies_with(client, key)
    assert refused.status_code == 401
    assert "revoked" in refused.content.decode()

    page = client.get(URL)
    body = page.content.decode()
    assert "is revoked: the API refuses its key from now on." in body
    assert f'data-testid="revoke-{token.pk}"' not in body
    (event,) = AuthEvent.objects.filter(kind=AuthEvent.Kind.API_TOKEN_REVOKED)
    assert (event.user, event.by, event.user_agent) == (world.alice, None, "pytest browser")


def test_revoking_is_a_post(client, world):
    token, _ = token_create(user=world.alice, name="nightly pull", days=30)
    client.force_login(world.alice)
    assert client.get(revoke_url(token)).status_code == 405
    assert ApiToken.objects.live().filter(pk=token.pk).exists()


def test_another_users_token_is_not_found_and_stays_live(client, world):
    token, key = token_create(user=world.alice, name="nightly pull", days=30)
    client.force_login(world.charlie)
    assert client.post(revoke_url(token)).status_code == 404
    assert client.post(reverse("api_token_revoke", args=[token.pk + 1000])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.API_TOKEN_REVOKED).exists()
    assert studies_with(client, key).status_code == 200


@pytest.mark.parametrize(
    ("name", "days", "field", "message"),
    [
        ("  ", "30", "name", "Name: say what the token is for"),
        ("nightly pull", "0", "days", "Valid for: a whole number of days from 1 to 365."),
        ("nightly pull", "366", "days", "Valid for: a whole number of days from 1 to 365."),
        ("nightly pull", "", "days", "Valid for: a whole number of days from 1 to 365."),
    ],
)
def test_a_refused_creation_keeps_what_was_typed_and_names_the_field(
    client, world, settings, name, days, field, message
):
    settings.API_TOKEN_MAX_DAYS = 365
    client.force_login(world.alice)
    response = create(client, name=name, days=days)
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == [field]
    assert message in form.errors[field][0]
    assert response.context["key"] is None
    body = response.content.decode()
    assert "No token was created: correct the values marked below." in body
    assert "is-invalid" in input_tag(body, field)
    assert f'value="{name}"' in input_tag(body, "name")
    if days:
        assert f'value="{days}"' in input_tag(body, "days")
    assert not ApiToken.objects.exists()
    assert not AuthEvent.objects.filter(kind=AuthEvent.Kind.API_TOKEN_CREATED).exists()


def test_a_name_already_live_is_refused_on_the_name(client, world):
    token_create(user=world.alice, name="nightly pull", days=30)
    client.force_login(world.alice)
    response = create(client, days="45")
    assert response.context["form"].errors == {"name": ["You already have a token of that name."]}
    assert 'value="45"' in input_tag(response.content.decode(), "days")
    assert ApiToken.objects.count() == 1


def test_a_data_manager_without_an_authenticator_app_is_refused(client, world):
    """Signed in with a backup code, her app gone: the screens let her in, the tokens not."""
    assert not TOTPDevice.objects.filter(user=world.diane).exists()
    backup = StaticDevice.objects.create(user=world.diane, name="backup codes", confirmed=True)
    login_unverified(client, world.diane)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = backup.persistent_id
    session.save()
    assert client.get(URL).status_code == 200

    response = create(client, name="warehouse", days="30")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.non_field_errors() == [
        "Set up two-factor login first: your role needs it for API tokens too."
    ]
    body = response.content.decode()
    assert "Set up two-factor login first: your role needs it for API tokens too." in body
    assert 'value="warehouse"' in input_tag(body, "name")
    assert 'value="30"' in input_tag(body, "days")
    assert not ApiToken.objects.exists()
    assert not TOTPDevice.objects.filter(user=world.diane).exists()


def test_a_data_manager_with_her_app_gets_a_working_token(client, world):
    client.force_login(world.diane)  # with her authenticator app (tests/two_factor.py)
    key = create(client, name="warehouse").context["key"]
    codes = {s["code"] for s in studies_with(client, key).json()["results"]}
    assert codes == {world.rct.code, world.cohort.code}


@pytest.mark.parametrize("tokens", [1, 10])
def test_the_page_costs_the_same_queries_for_1_and_10_tokens(
    client, world, django_assert_num_queries, tokens
):
    for n in range(tokens):
        token_create(user=world.alice, name=f"token {n}", days=30)
    client.force_login(world.alice)
    with django_assert_num_queries(PAGE_QUERIES):
        response = client.get(URL)
    assert len(response.context["tokens"]) == tokens


def test_the_page_with_a_new_key_holds_no_inline_code(client, world):
    client.force_login(world.alice)
    response = create(client)
    assert "Content-Security-Policy" in response
    assert_no_inline_code(response.content.decode(), URL)
