"""The patient page: visit schedule from day 0, and the allocation behind the blind."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from ecrf.accounts.models import Membership
from ecrf.patients.models import Patient
from ecrf.patients.visits import visits_schedule_from_day0
from tests.factories import AllocationFactory

pytestmark = pytest.mark.django_db


def detail(client, world, patient):
    return client.get(reverse("patients:detail", args=[world.rct.code, patient.subject_code]))


def test_schedule_shows_target_dates_and_windows_from_day0(client, world):
    patient = world.bxp_patients[0]
    Patient.objects.filter(pk=patient.pk).update(
        status=Patient.Status.ENROLLED, screening_date=date(2026, 2, 10), day0_date=date(2026, 3, 2)
    )
    patient.refresh_from_db()
    visits_schedule_from_day0(patient=patient)
    client.force_login(world.alice)
    response = detail(client, world, patient)
    windows = {
        column.visit.code: (
            column.visit.target_date,
            column.visit.earliest_date,
            column.visit.latest_date,
        )
        for column in response.context["columns"]
    }
    assert windows["SCR"] == (None, date(2026, 2, 2), date(2026, 3, 1))
    assert windows["M0"] == (date(2026, 3, 2), date(2026, 3, 2), date(2026, 3, 2))
    assert windows["M1"] == (date(2026, 4, 1), date(2026, 3, 25), date(2026, 4, 8))
    assert windows["M6"] == (date(2026, 8, 31), date(2026, 8, 17), date(2026, 9, 14))
    assert windows["M12"] == (date(2027, 3, 2), date(2027, 1, 31), date(2027, 4, 1))
    assert "UNS" not in windows
    assert "01/04/2026" in response.content.decode()  # French dates by default


def test_schedule_waits_for_day0(client, world):
    client.force_login(world.alice)
    response = detail(client, world, world.bxp_patients[1])
    assert response.context["columns"] == []


def test_blinded_users_see_the_kit_number_not_the_arm(client, world):
    patient = world.bxp_patients[0]
    Patient.objects.filter(pk=patient.pk).update(status=Patient.Status.ENROLLED)
    AllocationFactory(patient=patient, arm="PBO", kit_number="K-4242", allocated_by=world.alice)
    client.force_login(world.alice)
    body = detail(client, world, patient).content.decode()
    assert "K-4242" in body
    assert "PBO" not in body

    Membership.objects.filter(user=world.alice).update(unblinded=True)
    body = detail(client, world, patient).content.decode()
    assert "PBO" in body


def test_language_switch_shows_french(client, world):
    client.force_login(world.alice)
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    response = client.get(reverse("patients:list", args=[world.rct.code]))
    body = response.content.decode()
    assert '<html lang="fr">' in body
    assert "Inscrire un nouveau patient en sélection" in body
    assert "Screen a new patient" not in body
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    body = client.get(reverse("patients:list", args=[world.rct.code])).content.decode()
    assert '<html lang="en">' in body
    assert "Screen a new patient" in body
