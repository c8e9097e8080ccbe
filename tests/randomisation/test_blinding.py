"""Blinded users never see an arm: every page they can reach, in both languages."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from ecrf.patients.models import AllocationList

pytestmark = pytest.mark.django_db

ARM_WORDS = ("IMA", "PBO", "Imatinib mesylate", "Placebo")
BLINDED = ("alice", "bob", "charlie", "monica", "diane")
# Random tokens could contain three capitals by chance: they are not page content.
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def pages(world, lists):
    study = world.rct.code
    patients = world.bxp_patients + world.str_patients
    urls = [
        reverse("studies:chooser"),
        reverse("patients:list", args=[study]),
        reverse("patients:list", args=[study]) + "?status=enrolled",
        reverse("patients:allocation_lists", args=[study]),
    ]
    for patient in patients:
        for name in ("detail", "audit", "unblind"):
            urls.append(reverse(f"patients:{name}", args=[study, patient.subject_code]))
    for allocation_list in AllocationList.objects.all():
        urls.append(reverse("patients:allocation_list_detail", args=[study, allocation_list.pk]))
    return urls


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("persona", BLINDED)
def test_blinded_users_never_see_an_arm(client, world, lists, randomised, persona, language):
    client.force_login(getattr(world, persona))
    seen = 0
    for url in pages(world, lists):
        response = client.get(url, headers={"accept-language": language})
        assert response.status_code in (200, 403, 404), url
        html = CSRF.sub("", response.content.decode())
        for word in ARM_WORDS:
            assert word not in html, (url, word)
        seen += response.status_code == 200
    assert seen >= 4


def test_blinded_pages_do_show_the_kit_number(client, world, randomised):
    client.force_login(world.alice)
    patient = world.bxp_patients[0]
    html = client.get(reverse("patients:detail", args=[world.rct.code, patient.subject_code]))
    assert randomised[0].kit_number in html.content.decode()


def test_unblinded_data_manager_sees_the_arms(client, world, ursula, lists, randomised):
    client.force_login(ursula)
    html = client.get(
        reverse("patients:allocation_lists", args=[world.rct.code]),
        headers={"accept-language": "en"},
    ).content.decode()
    assert "IMA" in html and "PBO" in html
    assert str(lists["BXP"].seed) in html
    detail = client.get(
        reverse("patients:allocation_list_detail", args=[world.rct.code, lists["BXP"].pk]),
        headers={"accept-language": "en"},
    ).content.decode()
    assert "Imatinib mesylate 400 mg/day" in detail and "Placebo" in detail
    assert world.bxp_patients[0].subject_code in detail
