"""Review pages: the patient's audit trail, readable by monitors and data managers."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from ecrf.accounts.access import can_see_allocation
from ecrf.accounts.permissions import Action, can
from ecrf.patients.selectors import patient_for, study_for
from ecrf.review.audit_trail import patient_audit_trail


@login_required
def patient_audit(request, study_code: str, subject_code: str):
    study = study_for(request.user, study_code)
    patient = patient_for(request.user, study, subject_code)
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
