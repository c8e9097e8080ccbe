"""Building blocks of the safety screen tests: consent, AE answers, the AE form's POST."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from ecrf.crfs.services import crf_save
from ecrf.patients.models import Visit
from tests.factories import VisitFactory

CONSENT_DAYS_AGO = 30


def consent(patient, by):
    visit = VisitFactory(
        patient=patient,
        code="SCR",
        sequence=0,
        visit_date=timezone.localdate() - timedelta(days=CONSENT_DAYS_AGO),
        status=Visit.Status.IN_PROGRESS,
    )
    # Through the save service, which keeps the consent date on the patient.
    crf_save(
        visit=visit,
        form_code="consent",
        values={
            "consent_date": visit.visit_date,
            "consent_version": "1.0",
            "signed_by_investigator": True,
        },
        by=by,
        expected_version=0,
    )
    patient.refresh_from_db()
    return patient


def ae_values(**overrides) -> dict:
    today = timezone.localdate()
    values = {
        "term": "Nausea",
        "meddra_llt_code": "",
        "meddra_pt_code": "",
        "onset_date": (today - timedelta(days=3)).isoformat(),
        "end_date": None,
        "ongoing": True,
        "ctcae_grade": 2,
        "serious": False,
        "sae_death": False,
        "sae_life_threatening": False,
        "sae_hospitalisation": False,
        "sae_disability": False,
        "sae_congenital_anomaly": False,
        "sae_important_medical_event": False,
        "relatedness": "possible",
        "expected": True,
        "action_taken": "none",
        "outcome": "recovering",
        "death_date": None,
        "aware_at": timezone.now() - timedelta(hours=2),
    }
    values.update(overrides)
    return values


def serious(**overrides) -> dict:
    values = {"term": "Pneumonia", "ctcae_grade": 3, "serious": True, "sae_hospitalisation": True}
    values.update(overrides)
    return ae_values(**values)


def form_data(**overrides) -> dict:
    """The POST of the AE form (site time for 'aware')."""
    now = timezone.localtime() - timedelta(hours=1)
    data = {
        "term": "Nausea",
        "onset_date": (timezone.localdate() - timedelta(days=2)).isoformat(),
        "ongoing": "on",
        "ctcae_grade": "2",
        "serious": "no",
        "relatedness": "unlikely",
        "expected": "yes",
        "action_taken": "none",
        "outcome": "recovering",
        "aware_date": now.date().isoformat(),
        "aware_time": now.strftime("%H:%M"),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
