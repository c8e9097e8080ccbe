"""Casebook and site lists: constant query counts, the next visit and its window.

The upcoming-visits page, with its reminders, is tested in tests/reminders/test_views.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ecrf.patients.models import Patient, Visit
from ecrf.patients.visits import visits_schedule_from_day0
from tests.factories import VisitFactory

pytestmark = pytest.mark.django_db


def enrol_directly(patient: Patient, day0) -> Patient:
    Patient.objects.filter(pk=patient.pk).update(
        status=Patient.Status.ENROLLED, screening_date=day0 - timedelta(days=10), day0_date=day0
    )
    patient.refresh_from_db()
    visits_schedule_from_day0(patient=patient)
    return patient


@pytest.mark.parametrize("extra_unscheduled", [0, 4])
def test_casebook_query_count_is_the_same_for_1_and_10_visits(
    client, world, django_assert_num_queries, extra_unscheduled
):
    patient = world.bxp_patients[0]
    if extra_unscheduled:
        enrol_directly(patient, timezone.localdate() - timedelta(days=100))
        for repeat in range(1, extra_unscheduled + 1):
            VisitFactory(patient=patient, code="UNS", repeat=repeat, sequence=7)
    else:
        VisitFactory(patient=patient, code="SCR", sequence=1)
    assert patient.visits.count() == (10 if extra_unscheduled else 1)
    client.force_login(world.alice)
    url = reverse("patients:detail", args=[world.rct.code, patient.subject_code])
    # Fixed cost: session, user, the account's memberships (every role the page asks
    # about, the second factor's included: one query a request), study, patient, the
    # freezes and locks over the casebook, allocation, visits, the form index (every form
    # of every visit at once), the mRSS series, the adverse-event log and its open lab
    # prompts, deviations, the queries not closed per visit and the investigator signatures
    # (one query each, the review's tags); no session write (the login saved it). The
    # same for 1 visit and for 10 (the protocol conditions are facts on the patient).
    with django_assert_num_queries(15):
        response = client.get(url)
    assert len(response.context["columns"]) == patient.visits.count()


def test_patient_list_shows_the_next_visit_and_its_window(client, world):
    today = timezone.localdate()
    patient = enrol_directly(world.bxp_patients[0], today - timedelta(days=25))
    patient.visits.filter(code__in=["SCR", "M0"]).update(status=Visit.Status.COMPLETE)
    client.force_login(world.alice)
    response = client.get(reverse("patients:list", args=[world.rct.code]))
    row = next(p for p in response.context["page"] if p.pk == patient.pk)
    m1 = patient.visits.get(code="M1")
    assert (row.next_visit_code, row.next_visit_earliest, row.next_visit_latest) == (
        "M1",
        m1.earliest_date,
        m1.latest_date,
    )
