"""Enrolment and screen failure: the patient's inclusion decided against the case report forms.

Enrolment cross-checks the eligibility checklist with the data the forms hold (consent,
screening visit complete, each criterion's automatic checks in `ecrf.crfs.eligibility`),
so it lives with the forms; the patient's schedule, randomisation and status are the
patients app's, called from here. The checklist's decision (eligible, the reasons for a
screen failure) is a new version of the form, audited like any other change to it.
"""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.crfs.eligibility import eligibility_evaluate, eligibility_problems
from ecrf.crfs.models import Eligibility
from ecrf.patients.form_index import form_index_sync
from ecrf.patients.locks import require_unlocked
from ecrf.patients.models import Patient
from ecrf.patients.randomisation import allocation_take
from ecrf.patients.services import patient_locked
from ecrf.patients.visits import (
    consent_date,
    incomplete_forms,
    screening_visit_specs,
    visits_close_remaining,
    visits_schedule_from_day0,
)
from ecrf.studies.schedule import window_for


def _checklist_decide(
    checklist: Eligibility, *, eligible: bool, reasons: str | None = None
) -> None:
    """Record the service's decision on a locked checklist: a new version of the form.

    `eligible` is never typed in (the form does not offer it); bumping the version makes a
    save based on the checklist as it was before the decision a stale one. The caller's
    audit context (enrolment, screen failure) is the reason.
    """
    checklist.eligible = eligible
    if reasons is not None:
        checklist.screen_failure_reasons = reasons
    checklist.version += 1
    checklist.save()
    form_index_sync(checklist)


def patient_enrol(*, patient: Patient, by, day0_date: date) -> Patient:
    """Enrol a screened patient: eligibility cross-checked, randomised, visits planned.

    Refused, naming the criterion and the value, while the checklist and the data
    disagree. For a randomised study the patient takes the next slot of their site.
    """
    require(by, Action.ENROL, patient=patient)
    with transaction.atomic():
        patient = patient_locked(patient)
        if patient.status != Patient.Status.SCREENING:
            raise ValidationError(
                _("%(code)s is %(status)s, not in screening.")
                % {"code": patient.subject_code, "status": patient.get_status_display()}
            )
        checklist = Eligibility.objects.select_for_update().filter(patient=patient).first()
        # Enrolment decides the checklist (a new version of the form) and the casebook.
        require_unlocked(patient=patient, entry=checklist)
        problems = []
        if day0_date > timezone.localdate():
            problems.append(_("The inclusion date cannot be in the future."))
        if day0_date < patient.screening_date:
            # Also a database constraint: refused here with a message, not a server error.
            problems.append(
                _("The inclusion date is before the screening date (%s).")
                % patient.screening_date.isoformat()
            )
        consented = consent_date(patient)
        if consented is None:
            problems.append(_("Record the signed consent first."))
        elif day0_date < consented:
            problems.append(_("The inclusion date is before the consent date."))
        protocol = patient.protocol_version.protocol
        try:
            for spec in screening_visit_specs(protocol):
                visit = patient.visits.get(code=spec.code)
                window = window_for(spec, day0_date)
                if visit.status != visit.Status.COMPLETE:
                    problems.append(
                        _("Visit %(code)s must be complete before enrolment; still incomplete: "
                          "%(forms)s.")
                        % {"code": spec.code, "forms": incomplete_forms(visit) or "—"}
                    )  # fmt: skip
                elif visit.visit_date and not window.contains(visit.visit_date):
                    problems.append(
                        _("Visit %(code)s on %(date)s is outside its window for this inclusion "
                          "date (%(earliest)s to %(latest)s): screen the patient again.")
                        % {"code": spec.code, "date": visit.visit_date, "earliest": window.earliest,
                           "latest": window.latest}
                    )  # fmt: skip
            if checklist is None:
                problems.append(_("Fill in the eligibility checklist first."))
            else:
                results = eligibility_evaluate(
                    patient=patient, answers=checklist.answers or {}, day0=day0_date
                )
                problems += eligibility_problems(results)
        except OverflowError:  # a window or look-back period beyond the calendar (year 1)
            problems.append(_("The inclusion date %s is out of range.") % day0_date.isoformat())
        if problems:
            raise ValidationError(problems)

        with audited(by=by, reason="enrolment"):
            _checklist_decide(checklist, eligible=True)
            patient.day0_date = day0_date
            patient.status = Patient.Status.ENROLLED
            patient.save(update_fields=["day0_date", "status"])
            if protocol.arms:
                allocation_take(patient=patient, by=by)
            visits_schedule_from_day0(patient=patient)
            day0_visit = patient.visits.get(code=protocol.day0_visit.code)
            if day0_visit.visit_date is None:
                day0_visit.visit_date = day0_date
                day0_visit.status = day0_visit.Status.IN_PROGRESS
                day0_visit.save(update_fields=["visit_date", "status"])
    return patient


def patient_screen_fail(*, patient: Patient, by, reasons: str) -> Patient:
    """Record a screen failure with its reasons; the patient's visits are closed."""
    require(by, Action.ENROL, patient=patient)
    reasons = reasons.strip()
    if not reasons:
        raise ValidationError({"reasons": _("Give the reasons for the screen failure.")})
    with transaction.atomic():
        patient = patient_locked(patient)
        if patient.status != Patient.Status.SCREENING:
            raise ValidationError(_("Only a patient in screening can fail screening."))
        checklists = list(Eligibility.objects.select_for_update().filter(patient=patient))
        require_unlocked(patient=patient, entry=checklists[0] if checklists else None)
        with audited(by=by, reason=f"screen failure: {reasons}"):
            for checklist in checklists:
                _checklist_decide(checklist, eligible=False, reasons=reasons)
            checklist_visit = patient.visits.filter(
                code__in=[
                    spec.code
                    for spec in screening_visit_specs(patient.protocol_version.protocol)
                    if "eligibility" in spec.form_codes
                ]
            ).first()
            if not checklists and checklist_visit is not None:
                # Failed before the checklist was filled in: the reasons are still data
                # (the checklist's own field), not only words in the audit trail.
                created = Eligibility.objects.create(
                    patient=patient,
                    visit=checklist_visit,
                    protocol_version=patient.protocol_version,
                    entered_by=by,
                    status=Eligibility.Status.IN_PROGRESS,
                    eligible=False,
                    screen_failure_reasons=reasons,
                )
                form_index_sync(created)
            patient.status = Patient.Status.SCREEN_FAILED
            patient.save(update_fields=["status"])
        visits_close_remaining(patient=patient, by=by, reason=f"screen failure: {reasons}")
    return patient
