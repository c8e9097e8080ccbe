"""Nothing happens before consent, except the past events a medical history records."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from ecrf.crfs.models import MedicalHistory, Mrss
from ecrf.crfs.services import crf_save
from ecrf.patients.services import patient_create
from ecrf.patients.visits import visit_record_date

pytestmark = pytest.mark.django_db


@pytest.fixture
def consented(world):
    day = timezone.localdate() - timedelta(days=5)
    patient = patient_create(study=world.rct, site=world.bxp, by=world.alice, screening_date=day)
    visit = visit_record_date(visit=patient.visits.get(code="SCR"), by=world.alice, visit_date=day)
    crf_save(
        visit=visit,
        form_code="consent",
        values={"consent_date": day, "consent_version": "2.1", "signed_by_investigator": True},
        by=world.alice,
        expected_version=0,
    )
    return visit, day


def test_history_dates_may_precede_consent(world, consented):
    visit, _ = consented
    crf_save(
        visit=visit,
        form_code="medical_history",
        values={"ssc_type": "systemic", "mi_date": date(2019, 3, 1)},
        by=world.alice,
        expected_version=0,
    )
    assert MedicalHistory.objects.get(visit=visit).mi_date == date(2019, 3, 1)


def test_an_examination_before_consent_is_refused(world, consented):
    visit, day = consented
    with pytest.raises(ValidationError) as excinfo:
        crf_save(
            visit=visit,
            form_code="mrss",
            values={"exam_date": day - timedelta(days=1), "face": 1},
            by=world.alice,
            expected_version=0,
        )
    assert "exam_date" in excinfo.value.message_dict
    assert not Mrss.objects.filter(visit=visit).exists()
