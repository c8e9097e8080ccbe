"""Screening a patient: subject codes, scoping of the form, and bad input."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation

from ecrf.patients.models import Patient
from ecrf.patients.services import patient_create
from ecrf.studies.models import StudySite


@pytest.mark.django_db
def test_investigator_screens_patient_with_next_subject_code(client, world):
    client.force_login(world.alice)
    response = client.post(
        reverse("patients:create", args=[world.rct.code]),
        {"site": "BXP", "screening_date": timezone.localdate().isoformat()},
    )
    patient = Patient.objects.get(subject_code="BXP-004")
    assert response.status_code == 302
    assert response.url == reverse("patients:detail", args=[world.rct.code, "BXP-004"])
    assert patient.status == Patient.Status.SCREENING
    assert patient.protocol_version == world.rct.current_protocol
    assert patient.created_by == world.alice


@pytest.mark.django_db
def test_tampered_site_is_refused_and_nothing_saved(client, world):
    client.force_login(world.alice)
    before = Patient.objects.count()
    response = client.post(
        reverse("patients:create", args=[world.rct.code]),
        {"site": "STR", "screening_date": timezone.localdate().isoformat()},
    )
    assert response.status_code == 200
    assert "site" in response.context["form"].errors
    assert Patient.objects.count() == before


@pytest.mark.django_db
def test_future_screening_date_is_refused_with_field_message(client, world):
    client.force_login(world.alice)
    tomorrow = timezone.localdate() + timedelta(days=1)
    response = client.post(
        reverse("patients:create", args=[world.rct.code]),
        {"site": "BXP", "screening_date": tomorrow.isoformat()},
    )
    errors = response.context["form"].errors
    assert "screening_date" in errors
    assert "future" in str(errors["screening_date"]) or "futur" in str(errors["screening_date"])
    assert not Patient.objects.filter(subject_code="BXP-004").exists()


@pytest.mark.django_db
def test_missing_and_garbage_fields_give_form_errors(client, world):
    client.force_login(world.alice)
    url = reverse("patients:create", args=[world.rct.code])
    response = client.post(url, {"site": "BXP", "screening_date": "not-a-date"})
    assert response.status_code == 200
    assert "screening_date" in response.context["form"].errors
    response = client.post(url, {})
    assert set(response.context["form"].errors) == {"site", "screening_date"}


@pytest.mark.django_db
def test_cohort_patient_needs_a_group_of_the_protocol(client, world):
    client.force_login(world.rene)
    url = reverse("patients:create", args=[world.cohort.code])
    today = timezone.localdate().isoformat()
    response = client.post(url, {"site": "REN", "screening_date": today, "group": "XYZ"})
    assert "group" in response.context["form"].errors
    response = client.post(url, {"site": "REN", "screening_date": today, "group": "SLE"})
    assert response.status_code == 302
    assert Patient.objects.get(subject_code="REN-003").group == "SLE"


@pytest.mark.django_db
def test_monitor_and_data_manager_cannot_screen(client, world):
    for user in (world.monica, world.diane):
        client.force_login(user)
        response = client.get(reverse("patients:create", args=[world.rct.code]))
        assert response.status_code == 403


@pytest.mark.django_db
def test_service_refuses_site_where_user_has_no_staff_role(world):
    from django.core.exceptions import PermissionDenied

    before = Patient.objects.count()
    with translation.override("en"), pytest.raises(PermissionDenied, match="screen, enrol or end"):
        patient_create(
            study=world.rct,
            site=world.bxp,
            by=world.charlie,
            screening_date=timezone.localdate(),
        )
    assert Patient.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_screenings_get_distinct_consecutive_codes(studies):
    """Eight transactions screen at one site at once; the row lock serialises the counter."""
    from tests.factories import MembershipFactory, UserFactory

    rct = studies["rct"]
    study_site = StudySite.objects.select_related("site").get(study=rct, site__code="BXP")
    user = UserFactory(username="concurrent")
    MembershipFactory(user=user, study=rct, site=study_site.site, role="investigator")
    barrier = threading.Barrier(8)
    codes, errors = [], []

    def screen():
        try:
            barrier.wait()
            patient = patient_create(
                study=rct, site=study_site.site, by=user, screening_date=timezone.localdate()
            )
            codes.append(patient.subject_code)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=screen) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(codes) == [f"BXP-{n:03d}" for n in range(1, 9)]
    study_site.refresh_from_db()
    assert study_site.last_subject_number == 8
