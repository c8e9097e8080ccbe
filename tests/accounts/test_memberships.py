"""Memberships: the rules of roles and sites, and their administration with a reason."""

from __future__ import annotations

import pghistory
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation

from ecrf.accounts.access import Role, can_see_allocation, roles_for
from ecrf.accounts.models import Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, world):
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(boss)
    return client


def test_site_roles_need_a_site_and_all_site_roles_refuse_one(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=world.alice, study=world.rct, role=Role.MONITOR)
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(
            user=world.alice, study=world.rct, site=world.bxp, role=Role.DATA_MANAGER
        )


def test_clean_refuses_a_site_outside_the_study(world):
    membership = Membership(
        user=world.rene, study=world.cohort, site=world.bxp, role=Role.INVESTIGATOR
    )
    with translation.override("en"):
        with pytest.raises(ValidationError) as excinfo:
            membership.full_clean()
        assert "does not take part" in str(excinfo.value.message_dict["site"])


def test_roles_for_includes_all_site_roles(world):
    assert roles_for(world.diane, study=world.rct, site=world.str_) == {Role.DATA_MANAGER}
    assert roles_for(world.alice, study=world.rct, site=world.str_) == set()
    assert roles_for(world.alice, study=world.rct, site=world.bxp) == {Role.INVESTIGATOR}


def test_allocation_is_hidden_in_a_blinded_study_unless_unblinded(world):
    assert world.rct.blinded
    assert not can_see_allocation(world.alice, study=world.rct)
    assert not can_see_allocation(world.diane, study=world.rct)
    Membership.objects.filter(user=world.diane, study=world.rct).update(unblinded=True)
    assert can_see_allocation(world.diane, study=world.rct)
    # An open study shows its groups to everybody with access, and to nobody else.
    assert can_see_allocation(world.rene, study=world.cohort)
    assert not can_see_allocation(world.alice, study=world.cohort)


def test_admin_role_change_needs_a_reason_and_records_it(admin_client, world):
    membership = Membership.objects.get(user=world.bob)
    url = reverse("admin:accounts_membership_change", args=[membership.pk])
    data = {
        "user": world.bob.pk,
        "study": world.rct.pk,
        "site": world.bxp.pk,
        "role": Role.INVESTIGATOR,
        "active": "on",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors
    membership.refresh_from_db()
    assert membership.role == Role.COORDINATOR

    response = admin_client.post(url, {**data, "reason": "Bob now co-investigator"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.INVESTIGATOR
    event = pghistory.models.Events.objects.tracks(membership).order_by("pgh_id").last()
    assert event.pgh_diff == {"role": ["coordinator", "investigator"]}
    assert event.pgh_context["reason"] == "Bob now co-investigator"
    assert event.pgh_context["user"] == response.wsgi_request.user.pk


def test_admin_refuses_membership_at_a_site_outside_the_study(admin_client, world):
    before = Membership.objects.count()
    response = admin_client.post(
        reverse("admin:accounts_membership_add"),
        {
            "user": world.rene.pk,
            "study": world.cohort.pk,
            "site": world.bxp.pk,
            "role": Role.INVESTIGATOR,
            "active": "on",
            "reason": "typo",
        },
    )
    assert response.status_code == 200
    assert "site" in response.context["adminform"].form.errors
    assert Membership.objects.count() == before
