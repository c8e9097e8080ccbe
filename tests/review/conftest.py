"""Patients with forms to verify, and the SDV sample under the tests' control.

Whether a patient is in the SDV sample depends on the deployment's secret seed; the tests
pick a seed that puts the patients where a test wants them (`sample`), so that no test
depends on the draw of one particular seed.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone, translation

from ecrf.crfs.models import Demographics, Mrss
from ecrf.crfs.services import crf_save
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.patients.services import patient_create
from ecrf.review.plan import subject_sampled
from ecrf.scoring import mrss as mrss_scoring
from tests.factories import (
    AdverseEventFactory,
    ConsentFactory,
    PatientFactory,
    VisitFactory,
    crf_factory,
)
from tests.safety.conftest import CONSENT_DAY, consent


@pytest.fixture(autouse=True)
def _english():
    """Messages are asserted in English (the default language is French)."""
    with translation.override("en"):
        yield


@pytest.fixture
def en_client(client):
    """A browser asking for English pages."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def seed_where(wanted: dict[Patient, bool]) -> str:
    """A seed that puts each patient in the sample (True) or out of it (False)."""
    for n in itertools.count():
        seed = f"test-seed-{n}"
        if all(
            subject_sampled(
                seed=seed,
                study_code=patient.protocol_version.protocol.study.code,
                subject_code=patient.subject_code,
                percent=patient.protocol_version.protocol.sdv.sample_percent,
            )
            == sampled
            for patient, sampled in wanted.items()
        ):
            return seed
    raise AssertionError("unreachable")


@pytest.fixture
def sample(settings):
    """`sample({patient: True, other: False})`: draw the SDV sample that way."""

    def draw(wanted: dict[Patient, bool]) -> None:
        settings.SDV_SEED = seed_where(wanted)

    return draw


def mrss_values(score: int = 1, **changes) -> dict:
    values = {
        "exam_date": CONSENT_DAY,
        "assessor": "Dr Martin",
        **dict.fromkeys(mrss_scoring.AREAS, score),
    }
    values.update(changes)
    return values


DEMOGRAPHICS = {"birth_year": 1968, "sex": "F", "childbearing_potential": False}


def screening_forms(patient: Patient, *, by) -> Patient:
    """Consent, demographics and mRSS at the pre-inclusion visit, complete."""
    patient = consent(patient, by=by)
    scr = patient.visits.get(code="SCR")
    for code, values in (("demographics", DEMOGRAPHICS), ("mrss", mrss_values())):
        crf_save(visit=scr, form_code=code, values=values, by=by, expected_version=0)
    return patient


def screened_at(world, site, *, by) -> Patient:
    return patient_create(study=world.rct, site=site, by=by, screening_date=CONSENT_DAY)


@pytest.fixture
def patient(world) -> Patient:
    """A Bordeaux patient with consent, demographics and mRSS complete at SCR."""
    return screening_forms(screened_at(world, world.bxp, by=world.alice), by=world.alice)


def entry(patient: Patient, form_code: str, visit: str = "SCR") -> FormIndexEntry:
    return FormIndexEntry.objects.select_related("patient__protocol_version").get(
        patient=patient, form_code=form_code, visit__code=visit
    )


def fresh(entry: FormIndexEntry) -> FormIndexEntry:
    return FormIndexEntry.objects.select_related(
        "patient__protocol_version", "verified_by", "sdv_reset_by"
    ).get(pk=entry.pk)


def patient_with_forms(world, site: str = "bxp") -> Patient:
    """A patient written as rows: SCR dated with consent, demographics and mRSS complete, a
    planned M0, and a serious adverse event."""
    where = getattr(world, site)
    patient = PatientFactory(study=world.rct, site=where, created_by=world.alice)
    day = timezone.localdate() - timedelta(days=20)
    scr = VisitFactory(
        patient=patient, code="SCR", sequence=0, visit_date=day, status=Visit.Status.IN_PROGRESS
    )
    VisitFactory(patient=patient, code="M0", sequence=1)
    ConsentFactory(visit=scr, consent_date=day, status="complete")
    crf_factory(Demographics)(
        visit=scr, birth_year=1968, sex="F", childbearing_potential=False, status="complete"
    )
    crf_factory(Mrss)(
        visit=scr,
        exam_date=day,
        assessor="Dr Martin",
        status="complete",
        **dict.fromkeys(mrss_scoring.AREAS, 1),
    )
    AdverseEventFactory(
        patient=patient,
        serious=True,
        sae_hospitalisation=True,
        serious_aware_at=timezone.now(),
        aware_at=timezone.now() - timedelta(hours=1),
    )
    return patient
