"""The study and the patient a URL names, as the user may see them (another site's: 404)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from ecrf.accounts.access import studies_visible_to
from ecrf.patients.models import Patient
from ecrf.studies.models import Study


def study_for(user, study_code: str) -> Study:
    return get_object_or_404(studies_visible_to(user), code=study_code)


def patient_for(user, study: Study, subject_code: str) -> Patient:
    return get_object_or_404(
        Patient.objects.visible_to(user).select_related("site", "protocol_version"),
        study=study,
        subject_code=subject_code,
    )
