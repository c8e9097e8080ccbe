"""Facts the forms establish about a patient live on the patient, kept by the save service.

The schedule and the safety log read the consent date and the protocol's form conditions
from the patient (patients imports no form); crf_save copies them from the form that
records them, in the save's transaction, without adding to the patient's audit trail
(the form's own trail records the change).
"""

from __future__ import annotations

from datetime import timedelta

import pghistory.models
import pytest
from django.utils import timezone

from ecrf.crfs.services import crf_save, visit_forms
from ecrf.patients.models import Patient, Visit
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date

pytestmark = pytest.mark.django_db


@pytest.fixture
def screening(world):
    day = timezone.localdate() - timedelta(days=5)
    patient = patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=day)
    visit = visit_record_date(visit=patient.visits.get(code="SCR"), by=world.alice, visit_date=day)
    return visit, day


def save(world, visit, form_code, values, *, version=0, reason=""):
    return crf_save(
        visit=visit,
        form_code=form_code,
        values=values,
        by=world.alice,
        expected_version=version,
        reason=reason,
    )


def patient_events(patient) -> int:
    return pghistory.models.Events.objects.filter(
        pgh_obj_model="patients.Patient", pgh_obj_id=str(patient.pk)
    ).count()


def test_the_consent_form_keeps_the_consent_date_on_the_patient(world, screening):
    visit, day = screening
    events = patient_events(visit.patient)
    consent = save(
        world,
        visit,
        "consent",
        {"consent_date": day, "consent_version": "2.1", "signed_by_investigator": True},
    )
    assert Patient.objects.get(pk=visit.patient_id).consent_date == day
    save(
        world,
        visit,
        "consent",
        {"consent_date": day - timedelta(days=1)},
        version=consent.version,
        reason="typing error on the date",
    )
    assert Patient.objects.get(pk=visit.patient_id).consent_date == day - timedelta(days=1)
    assert patient_events(visit.patient) == events


def test_demographics_decide_the_childbearing_potential_condition(world, screening):
    visit, day = screening
    save(
        world,
        visit,
        "consent",
        {"consent_date": day, "consent_version": "2.1", "signed_by_investigator": True},
    )
    assert "pregnancy_test" not in visit_forms(Visit.objects.get(pk=visit.pk))
    demographics = save(
        world,
        visit,
        "demographics",
        {"birth_year": 1980, "sex": "F", "childbearing_potential": True},
    )
    patient = Patient.objects.get(pk=visit.patient_id)
    assert patient.conditions == ["female_childbearing_potential"]
    # The pregnancy test the condition calls for is now one of the screening visit's forms.
    assert "pregnancy_test" in visit_forms(Visit.objects.get(pk=visit.pk))
    save(
        world,
        visit,
        "demographics",
        {"childbearing_potential": False},
        version=demographics.version,
        reason="post-menopausal, corrected",
    )
    assert Patient.objects.get(pk=visit.patient_id).conditions == []
    assert "pregnancy_test" not in visit_forms(Visit.objects.get(pk=visit.pk))
