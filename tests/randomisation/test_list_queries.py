"""The allocation list pages cost the same number of queries for one list and for many, for
a few slots and for many (pinned)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ecrf.patients.randomisation import allocation_list_generate, allocation_take

pytestmark = pytest.mark.django_db


def generate(world, ursula, site, n: int) -> list:
    return [
        allocation_list_generate(study=world.rct, site=site, size=4, seed=seed, by=ursula)
        for seed in range(1, n + 1)
    ]


@pytest.mark.parametrize("per_site", [1, 3])
@pytest.mark.parametrize("persona", ["ursula", "alice"])
def test_the_lists_page_costs_the_same_for_one_list_and_many(
    client, world, ursula, per_site, persona, django_assert_num_queries
):
    for site in (world.bxp, world.str_):
        generate(world, ursula, site, per_site)
    allocation_take(patient=world.bxp_patients[0], by=world.alice)
    client.force_login(ursula if persona == "ursula" else world.alice)
    url = reverse("patients:allocation_lists", args=[world.rct.code])
    # Session, user, the account's memberships (roles, unblinded?, the second factor),
    # study, its protocol version; the sites, the slots per site, the lists with their
    # counts. The unblinded manager: the protocol version again (the arms), the slots per
    # arm, the sites of the form that generates a list.
    with django_assert_num_queries(12 if persona == "ursula" else 8):
        response = client.get(url)
    assert response.status_code == 200
    assert sum(len(row["lists"]) for row in response.context["rows"]) == (
        2 * per_site if persona == "ursula" else per_site
    )


@pytest.mark.parametrize("size", [4, 40])
def test_a_lists_page_of_slots_costs_the_same_for_few_and_many(
    client, world, ursula, size, django_assert_num_queries
):
    allocation_list = allocation_list_generate(
        study=world.rct, site=world.bxp, size=size, seed=3, by=ursula
    )
    for patient in world.bxp_patients[:2]:
        allocation_take(patient=patient, by=world.alice)
    client.force_login(ursula)
    url = reverse("patients:allocation_list_detail", args=[world.rct.code, allocation_list.pk])
    # Session, user, the account's memberships (unblinded?, the second factor), study, its
    # protocol version, the list, the protocol version again (the arms' labels), the slots
    # with their patients and who allocated them; no session write (the login saved it).
    with django_assert_num_queries(9):
        response = client.get(url)
    assert len(response.context["slots"]) == allocation_list.slots.count() >= size
