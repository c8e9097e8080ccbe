"""Review pages: the patient's audit trail, readable by monitors and data managers."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, render

from ecrf.accounts.access import can_see_allocation, studies_visible_to
from ecrf.accounts.permissions import Action, can
from ecrf.patients.models import Patient
from ecrf.review.audit_trail import patient_audit_trail


@login_required
def patient_audit(request, study_code: str, subject_code: str):
    study = get_object_or_404(studies_visible_to(request.user), code=study_code)
    patient = get_object_or_404(
        Patient.objects.visible_to(request.user).select_related("site", "protocol_version"),
        study=study,
        subject_code=subject_code,
    )
    if not can(request.user, Action.READ_AUDIT, patient=patient):
        raise PermissionDenied
    entries = patient_audit_trail(
        patient=patient, unblinded=can_see_allocation(request.user, study=study)
    )
    return render(
        request,
        "audit/patient_trail.html",
        {"study": study, "patient": patient, "entries": entries, "skipped": entries.skipped},
    )
