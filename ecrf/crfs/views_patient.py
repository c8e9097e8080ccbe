"""The patient page (casebook, mRSS chart, adverse events), enrolment and screen failure.

They read the case report forms (the mRSS totals, the eligibility checklist), so they live
with the forms, under the patients app's URL names (`patients:detail`, `patients:enrol`,
`patients:screen_fail`; see ecrf/urls.py). The adverse-event card is the safety app's
inclusion tag: this app never imports safety.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ecrf.accounts.access import can_see_allocation
from ecrf.accounts.permissions import Action, actions_for
from ecrf.crfs.enrolment import patient_enrol, patient_screen_fail
from ecrf.crfs.selectors import mrss_series
from ecrf.patients.casebook import casebook
from ecrf.patients.forms import EndOfStudyForm, EnrolForm, PlanInclusionForm, ScreenFailForm
from ecrf.patients.locks import casebook_locks, covers_everything, locks_shown
from ecrf.patients.models import Allocation, DataLock, Patient
from ecrf.patients.selectors import patient_for, study_for
from ecrf.patients.unblinding import is_unblinded
from ecrf.patients.views import patient_action


@login_required
def patient_detail(request, study_code: str, subject_code: str):
    """The casebook: visits × forms with status and windows, deviations, the mRSS chart."""
    study = study_for(request.user, study_code)
    patient = patient_for(request.user, study, subject_code)
    protocol = patient.protocol_version.protocol
    actions = actions_for(request.user, patient=patient)
    allocation = None
    if protocol.arms:
        allocation = Allocation.objects.visible_to(request.user).filter(patient=patient).first()
    # The freezes and locks over the casebook (one query). Over all of it, its buttons go:
    # a courtesy, the services refuse the change anyway.
    locks = casebook_locks(patient)
    held = covers_everything(locks) is not None
    manages = Action.ENROL in actions and not held
    screening = patient.status == Patient.Status.SCREENING
    book = casebook(patient)
    for lock in locks:
        if lock.level == DataLock.Level.VISIT:
            for column in book["columns"]:
                if column.visit.pk == lock.visit_id and not hasattr(column.visit, "lock"):
                    column.visit.lock = lock
    return render(
        request,
        "patients/detail.html",
        {
            "study": study,
            "patient": patient,
            "protocol": protocol,
            "allocation": allocation,
            "show_arm": allocation is not None and can_see_allocation(request.user, study=study),
            "actions": actions,
            "can_read_audit": Action.READ_AUDIT in actions,
            "can_enter": Action.ENTER in actions and not held,
            "locks": locks_shown(locks, protocol=protocol),
            "can_lock": bool(actions & {Action.FREEZE, Action.LOCK}),
            "can_unlock": Action.UNLOCK in actions,
            "deviations": patient.deviations.open().select_related("visit"),
            "plan_form": PlanInclusionForm(initial={"planned_day0_date": patient.planned_day0_date})
            if manages and screening
            else None,
            "enrol_form": EnrolForm(initial={"day0_date": timezone.localdate()})
            if manages and screening
            else None,
            "screen_fail_form": ScreenFailForm() if manages and screening else None,
            "end_form": EndOfStudyForm(initial={"end_date": timezone.localdate()})
            if manages and patient.status == Patient.Status.ENROLLED
            else None,
            "has_unscheduled": any(v.kind == "unscheduled" for v in protocol.visits),
            "can_unblind": allocation is not None and Action.UNBLIND in actions,
            "unblinded": allocation is not None and is_unblinded(patient),
            **book,
            "mrss": mrss_series(patient, [column.visit for column in book["columns"]]),
        },
    )


@login_required
@require_POST
def patient_enrol_view(request, study_code: str, subject_code: str):
    return patient_action(
        request,
        study_code,
        subject_code,
        EnrolForm,
        lambda patient, data: patient_enrol(
            patient=patient, by=request.user, day0_date=data["day0_date"]
        ),
        _("Patient %(code)s enrolled."),
    )


@login_required
@require_POST
def patient_screen_fail_view(request, study_code: str, subject_code: str):
    return patient_action(
        request,
        study_code,
        subject_code,
        ScreenFailForm,
        lambda patient, data: patient_screen_fail(
            patient=patient, by=request.user, reasons=data["reasons"]
        ),
        _("Screen failure of %(code)s recorded."),
    )
