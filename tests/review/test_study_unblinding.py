"""Unblinding the whole study: the administrator, after the database lock, with a password
and a reason; audited, the sponsor told, and every member then sees the arms."""

from __future__ import annotations

import pghistory
import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from ecrf.accounts.access import can_see_allocation
from ecrf.accounts.models import Membership, Role
from ecrf.notifications.models import OutboundEmail
from ecrf.review.locks import data_lock
from ecrf.review.study_unblinding import study_unblind
from ecrf.studies.models import Study, StudyUnblinding
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SPONSOR = ["pharmacovigilance@chu-bordeaux.example"]
REASON = "Final analysis after the database lock of 2026-12-15"


@pytest.fixture
def adele(world):
    adele = UserFactory(username="adele")
    MembershipFactory(user=adele, study=world.rct, site=None, role=Role.ADMIN)
    return adele


@pytest.fixture
def locked(world):
    return data_lock(by=world.diane, study=world.rct, reason="Final database lock")


def _blinded() -> bool:
    return Study.objects.get(code="NCT00479934").blinded


def test_refused_before_the_database_lock(world, adele):
    with pytest.raises(ValidationError) as refused:
        study_unblind(study=world.rct, by=adele, password=PASSWORD, reason=REASON)
    assert "the database is not locked" in refused.value.messages[0]
    assert _blinded() and not StudyUnblinding.objects.exists()


def test_a_lock_of_one_site_is_not_the_database_lock(world, adele):
    data_lock(by=world.diane, study=world.rct, site=world.bxp, reason="Site closed out early")
    with pytest.raises(ValidationError):
        study_unblind(study=world.rct, by=adele, password=PASSWORD, reason=REASON)
    assert _blinded()


@pytest.mark.parametrize(
    ("password", "reason", "fields"),
    [
        ("wrong", REASON, {"password"}),
        ("", REASON, {"password"}),
        (PASSWORD, "", {"reason"}),
        (PASSWORD, "too short", {"reason"}),
        ("", "", {"password", "reason"}),
    ],
)
def test_refused_without_the_password_or_a_reason(world, adele, locked, password, reason, fields):
    with pytest.raises(ValidationError) as refused:
        study_unblind(study=world.rct, by=adele, password=password, reason=reason)
    assert set(refused.value.message_dict) == fields
    assert _blinded() and not OutboundEmail.objects.exists()


@pytest.mark.parametrize("persona", ["alice", "monica", "diane", "charlie", "rene"])
def test_only_the_studys_administrator_may_unblind_it(world, adele, locked, persona):
    Membership.objects.filter(study=world.rct).update(unblinded=True)
    with pytest.raises(PermissionDenied):
        study_unblind(study=world.rct, by=getattr(world, persona), password=PASSWORD, reason=REASON)
    assert _blinded() and not StudyUnblinding.objects.exists()


def test_unblinding_is_recorded_audited_and_told_to_the_sponsor_then_everyone_sees_the_arms(
    world, adele, locked, django_capture_on_commit_callbacks
):
    members = [world.alice, world.bob, world.charlie, world.monica, world.diane, adele]
    assert not any(can_see_allocation(user, study=world.rct) for user in members)
    with django_capture_on_commit_callbacks(execute=True):
        unblinding = study_unblind(study=world.rct, by=adele, password=PASSWORD, reason=REASON)
        assert mail.outbox == []  # nothing leaves before the commit

    assert (unblinding.study, unblinding.by, unblinding.reason) == (world.rct, adele, REASON)
    study = Study.objects.get(pk=world.rct.pk)
    assert not study.blinded
    assert all(can_see_allocation(user, study=study) for user in members)
    assert not can_see_allocation(world.rene, study=study)  # not a member of the trial

    # The flag's change carries who and why in the audit trail, as does the record.
    change = pghistory.models.Events.objects.tracks(study).order_by("-pgh_created_at").first()
    assert change.pgh_data["blinded"] is False
    assert change.pgh_context["user"] == adele.pk
    assert change.pgh_context["reason"] == f"study unblinding: {REASON}"
    (recorded,) = pghistory.models.Events.objects.tracks(unblinding)
    assert recorded.pgh_context["user"] == adele.pk

    email = OutboundEmail.objects.get(kind="study_unblinding")
    assert email.recipients == SPONSOR
    (message,) = mail.outbox
    assert message.to == SPONSOR
    text = message.subject + "\n" + message.body
    for expected in ("NCT00479934", "unblinded", "adele", REASON, "Database locked", "UTC"):
        assert expected in text, expected

    with pytest.raises(ValidationError) as again:
        study_unblind(study=world.rct, by=adele, password=PASSWORD, reason=REASON)
    assert "is not blinded" in again.value.messages[0]


# -- the screen ---------------------------------------------------------------------------------


def _url(world):
    return reverse("review:study_unblind", args=[world.rct.code])


def test_the_administrator_finds_the_screen_from_the_study_chooser(client, world, adele):
    client.force_login(adele)
    page = client.get(reverse("studies:chooser")).content.decode()
    assert _url(world) in page
    client.force_login(world.diane)
    assert _url(world) not in client.get(reverse("studies:chooser")).content.decode()


def test_the_screen_is_the_administrators_only(client, world, adele, locked):
    client.force_login(world.diane)
    assert client.get(_url(world)).status_code == 403
    client.force_login(world.rene)  # not a member of the trial
    assert client.get(_url(world)).status_code == 404


def test_the_screen_says_the_database_must_be_locked_first(client, world, adele):
    client.force_login(adele)
    response = client.get(_url(world))
    assert b'data-testid="study-not-locked"' in response.content
    assert b'data-testid="study-unblind-form"' not in response.content


def test_the_screen_asks_for_the_confirmation_the_password_and_the_reason(
    client, world, adele, locked, django_capture_on_commit_callbacks
):
    client.force_login(adele)
    data = {"reason": REASON, "password": PASSWORD}
    response = client.post(_url(world), data)
    assert response.status_code == 400
    assert "confirm" in response.context["form"].errors
    response = client.post(_url(world), {**data, "password": "wrong", "confirm": "on"})
    assert response.status_code == 400
    assert "password" in response.context["form"].errors
    assert _blinded()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(world), {**data, "confirm": "on"})
    assert response.status_code == 302
    assert not _blinded()
    assert StudyUnblinding.objects.get().by == adele
    assert len(mail.outbox) == 1
