"""The Django admin: a reason for every save and delete, scoped lists, audited account
changes without the password hash, and no checkbox that unblinds a study."""

from __future__ import annotations

import pghistory
import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse
from django.utils import translation

from ecrf.accounts.models import Membership, User
from ecrf.audit.admin import AuditedAdmin
from ecrf.audit.models import AuthEvent
from ecrf.studies.models import Site, Study
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

REASON = "Sponsor asked to correct the site's city"


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def boss(world):
    return UserFactory(username="boss", is_staff=True, is_superuser=True, language="en")


@pytest.fixture
def admin_client(client, boss):
    client.force_login(boss)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def test_every_registered_admin_is_audited():
    assert [
        type(model_admin).__name__
        for model_admin in admin.site._registry.values()
        if not isinstance(model_admin, AuditedAdmin)
        and model_admin.model._meta.app_label not in {"auth", "pghistory"}
    ] == []


# -- blinding -----------------------------------------------------------------------------------


def _study_form(study, **changes):
    data = {
        "code": study.code,
        "acronym": study.acronym,
        "title": study.title,
        "sponsor": study.sponsor,
        "design": study.design,
        "target_enrolment": study.target_enrolment or "",
        "study_sites-TOTAL_FORMS": "0",
        "study_sites-INITIAL_FORMS": "0",
        "reason": "Title corrected to the protocol's wording",
    }
    return {**data, **changes}


def test_the_blinded_flag_is_not_in_the_study_admin_form(admin_client, world):
    url = reverse("admin:studies_study_change", args=[world.rct.pk])
    response = admin_client.get(url)
    assert "blinded" not in response.context["adminform"].form.fields
    assert b'name="blinded"' not in response.content


def test_posting_blinded_off_in_the_admin_leaves_the_study_blinded(admin_client, world):
    url = reverse("admin:studies_study_change", args=[world.rct.pk])
    # An unticked checkbox is an absent key; say "off" explicitly too.
    for blinded in ({}, {"blinded": ""}, {"blinded": "off"}):
        response = admin_client.post(url, _study_form(world.rct, title="Renamed", **blinded))
        assert response.status_code == 302
        study = Study.objects.get(pk=world.rct.pk)
        assert study.blinded is True
        assert study.title == "Renamed"


# -- the reason ---------------------------------------------------------------------------------


def _site_form(site, **changes):
    return {
        "code": site.code,
        "name": site.name,
        "city": site.city,
        "country": site.country,
        "timezone": site.timezone,
        **changes,
    }


def test_an_admin_save_without_a_reason_is_refused_with_a_message(admin_client, world):
    url = reverse("admin:studies_site_change", args=[world.bxp.pk])
    for reason in ({}, {"reason": "typo"}):
        response = admin_client.post(url, _site_form(world.bxp, city="Pessac", **reason))
        assert response.status_code == 200
        (message,) = response.context["adminform"].form.errors["reason"]
        assert message.startswith("Reason for change:")
    assert Site.objects.get(pk=world.bxp.pk).city == world.bxp.city


def test_an_admin_save_with_a_reason_keeps_who_and_why_in_the_audit_trail(
    admin_client, boss, world
):
    url = reverse("admin:studies_site_change", args=[world.bxp.pk])
    response = admin_client.post(url, _site_form(world.bxp, city="Pessac", reason=REASON))
    assert response.status_code == 302
    site = Site.objects.get(pk=world.bxp.pk)
    assert site.city == "Pessac"
    event = pghistory.models.Events.objects.tracks(site).order_by("-pgh_created_at").first()
    assert event.pgh_data["city"] == "Pessac"
    assert event.pgh_context["user"] == boss.pk
    assert event.pgh_context["reason"] == REASON


def test_a_users_admin_page_asks_the_reason_too(admin_client, world):
    url = reverse("admin:accounts_user_change", args=[world.bob.pk])
    response = admin_client.get(url)
    assert "reason" in response.context["adminform"].form.fields
    assert b'name="reason"' in response.content


def test_an_admin_delete_needs_a_reason_on_the_confirmation_page(admin_client, boss, world):
    spare = UserFactory(username="spare")
    url = reverse("admin:accounts_user_delete", args=[spare.pk])
    assert b'name="reason"' in admin_client.get(url).content
    response = admin_client.post(url, {"post": "yes"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Reason for change: give at least 10 characters."
    ]
    assert User.objects.filter(pk=spare.pk).exists()

    response = admin_client.post(url, {"post": "yes", "reason": "Account created by mistake"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=spare.pk).exists()
    (deleted,) = pghistory.models.Events.objects.filter(
        pgh_model="accounts.UserEvent", pgh_obj_id=spare.pk, pgh_label="delete"
    )
    assert deleted.pgh_context["user"] == boss.pk
    assert deleted.pgh_context["reason"] == "deleted in the admin: Account created by mistake"


def test_the_bulk_delete_action_is_withdrawn(admin_client):
    response = admin_client.get(reverse("admin:accounts_user_changelist"))
    assert "delete_selected" not in dict(admin.site.actions)
    assert response.context["action_form"] is None  # no action left to choose


# -- account events -----------------------------------------------------------------------------


def _audit_rows_text() -> str:
    """Every audit row a password could have reached: account events, the users' pghistory
    events and the contexts, as text."""
    with connection.cursor() as cursor:
        texts = []
        for table in ("audit_authevent", "accounts_userevent", "pghistory_context"):
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")  # noqa: S608
            texts += [row[0] for row in cursor.fetchall()]
    return "\n".join(texts)


def test_an_admin_password_reset_is_audited_without_the_hash(admin_client, boss, world):
    url = reverse("admin:auth_user_password_change", args=[world.bob.pk])
    new = "an-entirely-new-passphrase-42"
    reason = "Forgotten; identity checked by phone"
    response = admin_client.post(
        url, {"password1": new, "password2": new, "usable_password": "true", "reason": reason}
    )
    assert response.status_code == 302
    bob = User.objects.get(pk=world.bob.pk)
    assert bob.check_password(new)
    (event,) = AuthEvent.objects.filter(kind=AuthEvent.Kind.PASSWORD_RESET)
    assert (event.user_id, event.username, event.by_id) == (bob.pk, "bob", boss.pk)
    assert event.reason == reason
    text = _audit_rows_text()
    assert bob.password not in text
    assert new not in text
    assert bob.password.split("$")[-1] not in text


def test_changing_ones_own_password_is_its_own_event(world):
    from ecrf.audit.context import audited

    with audited(by=world.alice, reason="Own password changed"):
        world.alice.set_password("another-long-passphrase")
        world.alice.save()
    (event,) = AuthEvent.objects.filter(user=world.alice)
    assert (event.kind, event.by_id) == (AuthEvent.Kind.PASSWORD_CHANGED, None)
    assert world.alice.password not in _audit_rows_text()


def test_a_login_rehash_is_not_a_password_change(world):
    world.bob.save(update_fields=["last_login"])
    assert not AuthEvent.objects.exists()


def test_deactivating_and_activating_an_account_in_the_admin_are_audited(admin_client, boss, world):
    url = reverse("admin:accounts_user_change", args=[world.bob.pk])
    data = {
        "username": "bob",
        "first_name": world.bob.first_name,
        "last_name": world.bob.last_name,
        "email": world.bob.email,
        "date_joined_0": "2026-12-01",
        "date_joined_1": "09:00:00",
        "reason": "Bob left the Bordeaux team",
    }
    response = admin_client.post(url, data)  # is_active unticked
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert not User.objects.get(pk=world.bob.pk).is_active
    response = admin_client.post(url, {**data, "is_active": "on", "reason": "Bob came back"})
    assert response.status_code == 302
    assert list(
        AuthEvent.objects.filter(user=world.bob).order_by("at", "id").values_list("kind", "by")
    ) == [(AuthEvent.Kind.DEACTIVATED, boss.pk), (AuthEvent.Kind.ACTIVATED, boss.pk)]


def test_the_password_hash_is_not_tracked_in_the_users_audit_events():
    tracked = {field.name for field in apps.get_model("accounts", "UserEvent")._meta.fields}
    assert "password" not in tracked and "username" in tracked and "is_active" in tracked


# -- scoping ------------------------------------------------------------------------------------


def test_a_site_restricted_staff_user_lists_only_their_sites_patients(client, world):
    alice = world.alice
    alice.is_staff = True
    alice.save()
    alice.user_permissions.add(Permission.objects.get(codename="view_patient"))
    client.force_login(User.objects.get(pk=alice.pk))
    response = client.get(reverse("admin:patients_patient_changelist"))
    assert response.status_code == 200
    listed = {patient.subject_code for patient in response.context["cl"].result_list}
    assert listed == {patient.subject_code for patient in world.bxp_patients}
    assert all(patient.site == world.bxp for patient in response.context["cl"].result_list)
    other = world.str_patients[0]
    change = reverse("admin:patients_patient_change", args=[other.pk])
    assert client.get(change).status_code == 302  # another site's patient: not found


def test_a_staff_user_lists_only_the_studies_and_people_of_their_studies(client, world):
    rene = world.rene
    rene.is_staff = True
    rene.save()
    rene.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_study", "view_user", "view_membership"])
    )
    MembershipFactory(user=UserFactory(username="nobody"), study=world.rct, site=world.str_)
    client.force_login(User.objects.get(pk=rene.pk))
    studies = client.get(reverse("admin:studies_study_changelist")).context["cl"].result_list
    assert [study.code for study in studies] == [world.cohort.code]
    users = client.get(reverse("admin:accounts_user_changelist")).context["cl"].result_list
    assert {user.username for user in users} == {"diane", "rene"}
    memberships = client.get(reverse("admin:accounts_membership_changelist")).context["cl"]
    assert {m.study_id for m in memberships.result_list} == {world.cohort.pk}
    assert Membership.objects.filter(study=world.rct).exists()
