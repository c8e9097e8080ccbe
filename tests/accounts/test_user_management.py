"""A study's administrators manage people without the Django admin: invite by email with a
role and sites, change a role, withdraw an access, each with a reason and audited; and the
access review lists who holds which role where, their last login and second factor."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pghistory
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation
from django_otp.plugins.otp_totp.models import TOTPDevice

from ecrf.accounts.models import Membership, Role, User
from ecrf.accounts.services import (
    invitation_link,
    invitation_user,
    membership_deactivate,
    membership_role_change,
    user_invite,
)
from ecrf.notifications.models import OutboundEmail
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "A long passphrase 2026!"


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    """The pages in English, whoever logs in."""
    client.cookies["django_language"] = "en"
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def adele(world):
    """The trial's administrator (all sites)."""
    user = UserFactory(username="adele", first_name="Adèle", last_name="Martin", language="en")
    MembershipFactory(user=user, study=world.rct, site=None, role=Role.ADMIN)
    return user


@pytest.fixture
def cohort_admin(world):
    """The administrator of the other study: nothing to say about the trial's people."""
    user = UserFactory(username="colette")
    MembershipFactory(user=user, study=world.cohort, site=None, role=Role.ADMIN)
    return user


def invite(by, world, **changes):
    values = {
        "study": world.rct,
        "email": "Ines.Roux@chu-bordeaux.fr",
        "role": Role.INVESTIGATOR,
        "sites": [world.bxp, world.str_],
        "reason": "New sub-investigator for both sites",
    }
    return user_invite(by=by, **{**values, **changes})


def membership_of(user, world) -> Membership:
    return Membership.objects.get(user=user, study=world.rct)


def test_an_invitation_creates_an_inactive_account_with_its_roles_and_emails_a_link(world, adele):
    user = invite(adele, world)
    assert (user.username, user.email, user.is_active, user.has_usable_password()) == (
        "ines.roux@chu-bordeaux.fr",
        "Ines.Roux@chu-bordeaux.fr",
        False,
        False,
    )
    assert sorted(
        Membership.objects.filter(user=user).values_list("study__code", "site__code", "role")
    ) == [
        ("NCT00479934", "BXP", "investigator"),
        ("NCT00479934", "STR", "investigator"),
    ]
    email = OutboundEmail.objects.get(kind="invitation")
    assert email.recipients == ["Ines.Roux@chu-bordeaux.fr"]
    assert email.subject == "Invitation to NCT00479934"
    assert "as Investigator" in email.body
    link = re.search(r"http\S+/accounts/invitation/\S+/", email.body).group(0)
    assert invitation_user(*link.rstrip("/").split("/")[-2:]) == user
    event = pghistory.models.Events.objects.tracks(Membership.objects.filter(user=user).first())
    assert event.last().pgh_context["reason"] == "New sub-investigator for both sites"
    assert event.last().pgh_context["user"] == adele.pk


def test_the_invitee_chooses_a_password_once_then_logs_in(client, world, adele):
    user = invite(adele, world)
    path = urlsplit(invitation_link(user)).path
    page = client.get(path)
    assert page.status_code == 200 and "Ines.Roux@chu-bordeaux.fr" in page.content.decode()
    response = client.post(path, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 302 and response.url == "/accounts/login/"
    user.refresh_from_db()
    assert user.is_active and user.check_password(PASSWORD)
    # Through the login page: axes refuses an authentication without its request.
    logged_in = client.post(
        "/accounts/login/", {"username": "ines.roux@chu-bordeaux.fr", "password": PASSWORD}
    )
    assert logged_in.status_code == 302 and "_auth_user_id" in client.session
    client.logout()
    # The link worked once.
    again = client.post(
        path,
        {"new_password1": "Another 2026 phrase!", "new_password2": "x"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert again.status_code == 404
    assert "This link was already used, has expired or was withdrawn" in again.content.decode()


def test_an_existing_account_gets_the_role_and_an_email_not_a_new_account(world, adele):
    world.bob.email = "bob@chu-bordeaux.fr"
    world.bob.save()
    user = invite(adele, world, email="BOB@chu-bordeaux.fr", role=Role.MONITOR, sites=[world.str_])
    assert (
        user == world.bob and User.objects.filter(email__iexact="bob@chu-bordeaux.fr").count() == 1
    )
    assert Membership.objects.filter(user=world.bob, role=Role.MONITOR, site=world.str_).exists()
    assert OutboundEmail.objects.get(kind="invitation").subject == "New access to NCT00479934"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "not an address"}, "email", "Email: give a valid address."),
        ({"sites": []}, "sites", "Sites: choose at least one site of the study."),
        (
            {"role": Role.DATA_MANAGER},
            "sites",
            "Sites: data managers and administrators cover all sites; choose none.",
        ),
        ({"role": "superuser"}, "role", "Role: choose one of the roles listed."),
        ({"reason": "new"}, "reason", "Reason: give at least 10 characters."),
    ],
)
def test_an_invitation_is_refused_by_field(world, adele, changes, field, message):
    with pytest.raises(ValidationError) as refused:
        invite(adele, world, **changes)
    assert refused.value.message_dict == {field: [message]}
    assert not User.objects.filter(email__iexact="ines.roux@chu-bordeaux.fr").exists()
    assert not OutboundEmail.objects.exists()


def test_a_site_outside_the_study_is_refused(world, adele):
    with pytest.raises(ValidationError) as refused:
        invite(adele, world, sites=[world.ren])
    assert refused.value.message_dict == {
        "sites": ["Sites: choose sites that take part in the study."]
    }


@pytest.mark.parametrize("who", ["alice", "diane", "cohort_admin"])
def test_only_the_studys_administrators_manage_its_people(world, adele, cohort_admin, who):
    by = cohort_admin if who == "cohort_admin" else getattr(world, who)
    membership = membership_of(world.bob, world)
    with pytest.raises(PermissionDenied):
        invite(by, world)
    with pytest.raises(PermissionDenied):
        membership_deactivate(by=by, membership=membership, reason="Left the Bordeaux team")
    with pytest.raises(PermissionDenied):
        membership_role_change(
            by=by, membership=membership, role=Role.INVESTIGATOR, reason="Now investigator"
        )
    membership.refresh_from_db()
    assert (membership.active, membership.role) == (True, Role.COORDINATOR)
    assert not User.objects.filter(email__iexact="ines.roux@chu-bordeaux.fr").exists()


def test_withdrawing_the_last_access_closes_the_account_with_the_reason(world, adele):
    membership = membership_of(world.bob, world)
    with pytest.raises(ValidationError) as refused:
        membership_deactivate(by=adele, membership=membership, reason="left")
    assert refused.value.message_dict == {"reason": ["Reason: give at least 10 characters."]}
    membership_deactivate(by=adele, membership=membership, reason="Left the Bordeaux team")
    membership.refresh_from_db()
    world.bob.refresh_from_db()
    assert (membership.active, world.bob.is_active) == (False, False)
    event = pghistory.models.Events.objects.tracks(membership).order_by("pgh_id").last()
    assert event.pgh_diff == {"active": [True, False]}
    assert event.pgh_context == {"reason": "Left the Bordeaux team", "user": adele.pk}
    with pytest.raises(ValidationError):
        membership_deactivate(by=adele, membership=membership, reason="Left the Bordeaux team")


def test_an_account_with_another_access_stays_open(world, adele):
    diane_rct = membership_of(world.diane, world)
    membership_deactivate(by=adele, membership=diane_rct, reason="No longer manages this trial")
    world.diane.refresh_from_db()
    assert world.diane.is_active  # still the data manager of the cohort


def test_a_withdrawn_invitation_link_no_longer_opens(client, world, adele):
    user = invite(adele, world, sites=[world.bxp])
    path = urlsplit(invitation_link(user)).path
    membership_deactivate(
        by=adele, membership=membership_of(user, world), reason="Invited by mistake"
    )
    assert client.get(path).status_code == 404


def test_a_role_changes_in_place_with_its_reason(world, adele):
    membership = membership_of(world.bob, world)
    membership_role_change(
        by=adele, membership=membership, role=Role.INVESTIGATOR, reason="Now co-investigator"
    )
    membership.refresh_from_db()
    assert (membership.role, membership.site, membership.active) == (
        Role.INVESTIGATOR,
        world.bxp,
        True,
    )
    event = pghistory.models.Events.objects.tracks(membership).order_by("pgh_id").last()
    assert event.pgh_diff == {"role": ["coordinator", "investigator"]}
    assert event.pgh_context == {"reason": "Now co-investigator", "user": adele.pk}


def test_a_change_between_a_site_role_and_an_all_site_role_is_refused(world, adele):
    with pytest.raises(ValidationError) as refused:
        membership_role_change(
            by=adele,
            membership=membership_of(world.bob, world),
            role=Role.DATA_MANAGER,
            reason="Now data manager",
        )
    assert list(refused.value.message_dict) == ["role"]


def test_an_administrator_cannot_withdraw_or_change_their_own_access(world, adele):
    own = membership_of(adele, world)
    with pytest.raises(ValidationError):
        membership_deactivate(by=adele, membership=own, reason="Leaving the study now")
    with pytest.raises(ValidationError):
        membership_role_change(by=adele, membership=own, role=Role.ADMIN, reason="Same again")


# -- the pages ----------------------------------------------------------------------------------


def test_the_access_review_lists_roles_sites_last_login_and_second_factor(client, world, adele):
    world.alice.last_login = timezone.now() - timedelta(days=3)
    world.alice.first_name, world.alice.last_name = "Alice", "Durand"
    world.alice.save()
    TOTPDevice.objects.create(user=world.diane, name="phone", confirmed=True)
    client.force_login(adele)
    response = client.get("/studies/NCT00479934/users/")
    assert response.status_code == 200
    rows = {(row.username, row.role, row.site): row for row in response.context["rows"]}
    alice = rows[("alice", "investigator", "BXP")]
    assert (alice.name, alice.active, alice.second_factor) == ("Alice Durand", True, False)
    assert alice.last_login == world.alice.last_login
    assert rows[("diane", "data_manager", "all sites")].second_factor is True
    assert rows[("charlie", "investigator", "STR")].last_login is None
    assert ("rene", "investigator", "REN") not in rows  # another study's people
    body = response.content.decode()
    assert 'data-testid="access-review"' in body and "Access review as of" in body
    assert "Alice Durand" in body and "Never" in body

    download = client.get("/studies/NCT00479934/users/", {"download": "csv"})
    assert download["Content-Type"] == "text/csv"
    assert 'filename="access-review-NCT00479934-' in download["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(download.content.decode())))
    assert lines[0][:2] == ["Access review", "NCT00479934"]
    assert lines[1][:5] == ["Name", "Username", "Email", "Role", "Site"]
    diane = next(line for line in lines[2:] if line[1] == "diane")
    assert (diane[3], diane[4], diane[6], diane[10]) == ("Data manager", "all sites", "Yes", "Yes")


@pytest.mark.parametrize("who", ["alice", "monica", "diane", "cohort_admin"])
def test_the_people_pages_are_the_administrators_only(client, world, adele, cohort_admin, who):
    client.force_login(cohort_admin if who == "cohort_admin" else getattr(world, who))
    membership = membership_of(world.bob, world)
    expected = 404 if who == "cohort_admin" else 403  # the trial is not theirs to see
    assert client.get("/studies/NCT00479934/users/").status_code == expected
    response = client.post(
        f"/studies/NCT00479934/users/{membership.pk}/deactivate/", {"reason": "Left the team now"}
    )
    assert response.status_code == expected
    membership.refresh_from_db()
    assert membership.active


def test_the_pages_invite_change_and_withdraw(client, world, adele):
    client.force_login(adele)
    response = client.post(
        "/studies/NCT00479934/users/",
        {
            "email": "paul@chu-bordeaux.fr",
            "role": "monitor",
            "sites": [world.bxp.pk],
            "reason": "Monitor for Bordeaux",
        },
    )
    assert response.status_code == 302
    paul = User.objects.get(email="paul@chu-bordeaux.fr")
    membership = membership_of(paul, world)
    assert (membership.role, membership.site) == (Role.MONITOR, world.bxp)

    refused = client.post(
        "/studies/NCT00479934/users/", {"email": "x", "role": "monitor", "reason": "short"}
    )
    assert refused.status_code == 400
    assert refused.context["invite"].errors["email"] == ["Enter a valid email address."]

    client.post(
        f"/studies/NCT00479934/users/{membership.pk}/role/",
        {"role": "investigator", "reason": "Now investigator at BXP"},
    )
    membership.refresh_from_db()
    assert membership.role == Role.INVESTIGATOR
    client.post(
        f"/studies/NCT00479934/users/{membership.pk}/deactivate/",
        {"reason": "Left the Bordeaux team"},
    )
    membership.refresh_from_db()
    assert not membership.active
