"""A consented Bordeaux patient of the imatinib trial, and adverse events to record.

Dates are fixed in the autumn of 2026 (consent on 15 September, before the clocks go
back on 25 October), so the daylight-saving cases read as the calendar does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.utils import translation

from ecrf.crfs.services import crf_save
from ecrf.patients.models import Patient
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date, visits_schedule_from_day0
from ecrf.safety.services import ae_create
from tests.factories import PASSWORD

CONSENT_DAY = date(2026, 9, 15)
DAY0 = date(2026, 9, 29)


@pytest.fixture(autouse=True)
def _english():
    """Messages are asserted in English (the default language is French)."""
    with translation.override("en"):
        yield


@pytest.fixture
def password() -> str:
    return PASSWORD


def consent(patient: Patient, *, by, day: date = CONSENT_DAY) -> Patient:
    """Date the screening visit and record the signed consent, as the site does."""
    visit = visit_record_date(visit=patient.visits.get(code="SCR"), by=by, visit_date=day)
    crf_save(
        visit=visit,
        form_code="consent",
        values={"consent_date": day, "consent_version": "2.1", "signed_by_investigator": True},
        by=by,
        expected_version=0,
    )
    patient.refresh_from_db()  # the consent date is now a fact on the patient
    return patient


@pytest.fixture
def unconsented(world) -> Patient:
    """Screened at Bordeaux, consent not recorded yet."""
    return patient_create(
        study=world.rct, site=world.bxp, by=world.alice, screening_date=CONSENT_DAY
    )


@pytest.fixture
def patient(world, unconsented) -> Patient:
    """Screened and consented at Bordeaux on CONSENT_DAY: the AE log is open."""
    return consent(unconsented, by=world.alice)


@pytest.fixture
def enrolled(world, patient) -> Patient:
    """The consented patient included on DAY0 with every visit of the schedule planned.

    Enrolment itself (eligibility, randomisation) is walked through in tests/walks; here
    only its outcome matters: an enrolled patient with visits still to come.
    """
    patient.status = Patient.Status.ENROLLED
    patient.day0_date = DAY0
    patient.save(update_fields=["status", "day0_date"])
    visits_schedule_from_day0(patient=patient)
    return patient


def at(*args) -> datetime:
    """A UTC instant."""
    return datetime(*args, tzinfo=UTC)


def ae_values(**overrides) -> dict:
    """A complete, valid, non-serious event (nausea for five days in October)."""
    values = {
        "term": "Nausea",
        "meddra_llt_code": "",
        "meddra_pt_code": "",
        "onset_date": "2026-10-01",
        "end_date": date(2026, 10, 5),
        "ongoing": False,
        "ctcae_grade": 1,
        "serious": False,
        "sae_death": False,
        "sae_life_threatening": False,
        "sae_hospitalisation": False,
        "sae_disability": False,
        "sae_congenital_anomaly": False,
        "sae_important_medical_event": False,
        "relatedness": "unlikely",
        "expected": True,
        "action_taken": "none",
        "outcome": "recovered",
        "death_date": None,
        "aware_at": at(2026, 10, 2, 9, 0),
    }
    values.update(overrides)
    return values


def sae_values(**overrides) -> dict:
    """A serious event: pneumonia with hospitalisation, ongoing, not related, expected."""
    values = ae_values(
        term="Pneumonia",
        onset_date="2026-10-20",
        end_date=None,
        ongoing=True,
        ctcae_grade=3,
        serious=True,
        sae_hospitalisation=True,
        relatedness="not_related",
        outcome="recovering",
        aware_at=at(2026, 10, 21, 7, 30),
    )
    values.update(overrides)
    return values


@pytest.fixture
def serious_event(world, patient):
    """A recorded serious event with its pending initial report."""
    return ae_create(patient=patient, by=world.alice, values=sae_values())
