"""Overdue means the visit, not the typing: an undated visit past its window is overdue;
a visit that took place with forms still to enter is "data entry pending", counted from
its date, on the casebook and on the upcoming-visits page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from ecrf.patients.casebook import visit_timing
from ecrf.patients.models import Patient, Visit
from tests.clock import TODAY
from tests.patients.test_casebook import enrol_directly

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def included_yesterday(patient: Patient) -> Patient:
    """Included yesterday: M0 (window 0/0) took place then, its forms still to enter."""
    patient = enrol_directly(patient, TODAY - timedelta(days=1))
    patient.visits.filter(code="SCR").update(status=Visit.Status.COMPLETE)
    patient.visits.filter(code="M0").update(
        visit_date=TODAY - timedelta(days=1), status=Visit.Status.IN_PROGRESS
    )
    return patient


def test_m0_dated_yesterday_with_forms_pending_is_not_overdue_on_the_casebook(client, world):
    patient = included_yesterday(world.bxp_patients[0])
    client.force_login(world.alice)
    response = client.get(reverse("patients:detail", args=[world.rct.code, patient.subject_code]))
    m0 = next(c for c in response.context["columns"] if c.visit.code == "M0")
    assert (m0.overdue, m0.days_left, m0.entry_pending_days) == (False, None, 1)
    body = response.content.decode()
    assert "data entry pending for 1 day" in body
    assert "overdue" not in body


def test_an_undated_visit_past_its_window_is_overdue_a_dated_one_pending(client, world):
    patient = enrol_directly(world.bxp_patients[0], TODAY - timedelta(days=40))
    patient.visits.filter(code__in=["SCR", "M0"]).update(status=Visit.Status.COMPLETE)
    client.force_login(world.alice)
    url = reverse("patients:detail", args=[world.rct.code, patient.subject_code])
    m1 = next(c for c in client.get(url).context["columns"] if c.visit.code == "M1")
    assert (m1.overdue, m1.days_overdue, m1.entry_pending_days) == (True, 3, None)
    assert "3 days overdue" in client.get(url).content.decode()

    # Dated late, forms pending: no longer overdue, pending since its date.
    patient.visits.filter(code="M1").update(
        visit_date=TODAY - timedelta(days=2), status=Visit.Status.IN_PROGRESS
    )
    m1 = next(c for c in client.get(url).context["columns"] if c.visit.code == "M1")
    assert (m1.overdue, m1.entry_pending_days) == (False, 2)


def test_upcoming_page_tells_pending_entry_from_overdue(client, world):
    pending = included_yesterday(world.bxp_patients[0])
    late = enrol_directly(world.bxp_patients[1], TODAY - timedelta(days=40))
    late.visits.filter(code__in=["SCR", "M0"]).update(status=Visit.Status.COMPLETE)
    client.force_login(world.alice)
    response = client.get(reverse("patients:upcoming", args=[world.rct.code]))
    rows = {(v.patient.subject_code, v.code): (d, p) for v, d, p, *_ in response.context["rows"]}
    assert rows[(pending.subject_code, "M0")] == (None, 1)
    assert rows[(late.subject_code, "M1")] == (-3, None)
    body = response.content.decode()
    assert body.count("table-danger") == 1  # the undated M1 only
    assert "data entry pending for 1 day" in body


def test_visit_timing_counts_from_the_visit_date(world):
    visit = Visit(
        status=Visit.Status.IN_PROGRESS,
        latest_date=TODAY - timedelta(days=10),
        visit_date=TODAY - timedelta(days=12),
    )
    assert visit_timing(visit, TODAY) == (None, 12)
    visit.status, visit.visit_date = Visit.Status.PLANNED, None
    assert visit_timing(visit, TODAY) == (-10, None)
    visit.status = Visit.Status.MISSED
    assert visit_timing(visit, TODAY) == (None, None)
