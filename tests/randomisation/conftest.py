"""Randomisation fixtures: an unblinded data manager, and lists for the trial's sites."""

from __future__ import annotations

import pytest
from django.utils import translation

from ecrf.accounts.access import Role
from ecrf.patients.models import Patient
from ecrf.patients.randomisation import allocation_list_generate, allocation_take
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture(autouse=True)
def _english():
    """Messages are asserted in English (the default language is French); pages set their own
    language per request."""
    with translation.override("en"):
        yield


@pytest.fixture
def ursula(world):
    """Unblinded data manager of the trial: the only persona who may see arms."""
    user = UserFactory(username="ursula")
    MembershipFactory(user=user, study=world.rct, site=None, role=Role.DATA_MANAGER, unblinded=True)
    return user


@pytest.fixture
def lists(world, ursula):
    """A generated list at Bordeaux (BXP) and at Strasbourg (STR)."""
    return {
        site.code: allocation_list_generate(
            study=world.rct, site=site, size=20, seed=seed, by=ursula
        )
        for site, seed in ((world.bxp, 1234), (world.str_, 5678))
    }


@pytest.fixture
def randomised(world, lists):
    """Two Bordeaux patients and one Strasbourg patient randomised and enrolled."""
    taken = [
        allocation_take(patient=world.bxp_patients[0], by=world.alice),
        allocation_take(patient=world.bxp_patients[1], by=world.alice),
        allocation_take(patient=world.str_patients[0], by=world.charlie),
    ]
    Patient.objects.filter(pk__in=[a.patient_id for a in taken]).update(
        status=Patient.Status.ENROLLED
    )
    return taken
