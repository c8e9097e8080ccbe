"""Writes on patients: keyword-only, atomic, audited through pghistory in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.access import Role, roles_for
from ecrf.audit.context import audited
from ecrf.patients.models import Patient
from ecrf.patients.visits import (
    incomplete_forms,
    screening_visit_specs,
    visits_close_remaining,
    visits_create,
)
from ecrf.studies.models import StudySite


def patient_create(*, study, site, by, screening_date: date, group: str = "") -> Patient:
    """Screen a new patient at a site and give them the site's next subject code.

    The site's counter row is locked (SELECT ... FOR UPDATE), so concurrent screenings
    at one site get consecutive numbers and never the same code.
    """
    if not roles_for(by, study=study, site=site) & Role.SITE_STAFF:
        raise ValidationError(
            {"site": _("You are not an investigator or coordinator at this site.")}
        )
    protocol_version = study.current_protocol
    if protocol_version is None:
        raise ValidationError(_("This study has no protocol loaded yet."))
    protocol = protocol_version.protocol
    group_codes = [g.code for g in protocol.groups]
    if group_codes and group not in group_codes:
        raise ValidationError(
            {
                "group": _("Choose one of the groups %(groups)s.")
                % {"groups": ", ".join(group_codes)}
            }
        )
    if not group_codes and group:
        raise ValidationError({"group": _("This study has no groups.")})
    if screening_date > timezone.localdate():
        raise ValidationError({"screening_date": _("The screening date cannot be in the future.")})

    with transaction.atomic(), audited(by=by, reason="patient screened"):
        try:
            study_site = StudySite.objects.select_for_update().get(
                study=study, site=site, active=True
            )
        except StudySite.DoesNotExist:
            raise ValidationError(
                {"site": _("This site is not recruiting in this study.")}
            ) from None
        study_site.last_subject_number += 1
        study_site.save(update_fields=["last_subject_number"])
        patient = Patient.objects.create(
            study=study,
            site=site,
            protocol_version=protocol_version,
            subject_code=f"{site.code}-{study_site.last_subject_number:03d}",
            group=group,
            screening_date=screening_date,
            created_by=by,
        )
        visits_create(patient=patient, specs=screening_visit_specs(protocol), day0=None)
    return patient


# What a saved form may establish about the patient (`patient_facts()` of its model).
FACTS = frozenset({"consent_date", "conditions"})


def patient_facts_record(*, patient: Patient, facts: Mapping[str, object]) -> None:
    """Copy onto the patient what a saved form establishes about them.

    crf_save calls it in the save's transaction, with the patient it has locked, for the
    facts the form's model declares (`patient_facts()`): the consent date, and protocol form
    conditions as {condition: holds}. Only what changed is written; the form's own audit
    trail is the record, so the patient's is not touched.
    """
    changed = []
    for name, value in facts.items():
        if name not in FACTS:
            raise ValueError(f"{name!r} is not a fact a form establishes about a patient")
        if name == "conditions":
            held = set(patient.conditions)
            held |= {code for code, holds in value.items() if holds}
            held -= {code for code, holds in value.items() if not holds}
            value = sorted(held)
        if getattr(patient, name) != value:
            setattr(patient, name, value)
            changed.append(name)
    if changed:
        patient.save(update_fields=changed)


def _locked(patient: Patient) -> Patient:
    return (
        Patient.objects.select_for_update()
        .select_related("study", "site", "protocol_version")
        .get(pk=patient.pk)
    )


def patient_enrol(*, patient: Patient, by, day0_date: date) -> Patient:
    """Enrol a screened patient: eligibility cross-checked, randomised, visits planned.

    Refused, naming the criterion and the value, while the checklist and the data
    disagree. For a randomised study the patient takes the next slot of their site.
    """
    from ecrf.crfs.models import Eligibility
    from ecrf.patients.eligibility import eligibility_evaluate, eligibility_problems
    from ecrf.patients.randomisation import allocation_take
    from ecrf.patients.visits import (
        consent_date,
        screening_visit_specs,
        visits_schedule_from_day0,
    )
    from ecrf.studies.schedule import window_for

    with transaction.atomic():
        patient = _locked(patient)
        if not roles_for(by, study=patient.study, site=patient.site) & Role.SITE_STAFF:
            raise ValidationError(_("Only the site's investigators and coordinators enrol."))
        if patient.status != Patient.Status.SCREENING:
            raise ValidationError(
                _("%(code)s is %(status)s, not in screening.")
                % {"code": patient.subject_code, "status": patient.get_status_display()}
            )
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
            checklist = Eligibility.objects.filter(patient=patient).first()
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
            checklist.eligible = True
            checklist.save(update_fields=["eligible"])
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
    from ecrf.crfs.models import Eligibility
    from ecrf.patients.visits import visits_close_remaining

    reasons = reasons.strip()
    if not reasons:
        raise ValidationError({"reasons": _("Give the reasons for the screen failure.")})
    with transaction.atomic():
        patient = _locked(patient)
        if patient.status != Patient.Status.SCREENING:
            raise ValidationError(_("Only a patient in screening can fail screening."))
        with audited(by=by, reason=f"screen failure: {reasons}"):
            kept = Eligibility.objects.filter(patient=patient).update(
                eligible=False, screen_failure_reasons=reasons
            )
            checklist_visit = patient.visits.filter(
                code__in=[
                    spec.code
                    for spec in screening_visit_specs(patient.protocol_version.protocol)
                    if "eligibility" in spec.form_codes
                ]
            ).first()
            if not kept and checklist_visit is not None:
                # Failed before the checklist was filled in: the reasons are still data
                # (the checklist's own field), not only words in the audit trail.
                Eligibility.objects.create(
                    patient=patient,
                    visit=checklist_visit,
                    protocol_version=patient.protocol_version,
                    entered_by=by,
                    status=Eligibility.Status.IN_PROGRESS,
                    eligible=False,
                    screen_failure_reasons=reasons,
                )
            patient.status = Patient.Status.SCREEN_FAILED
            patient.save(update_fields=["status"])
        visits_close_remaining(patient=patient, by=by, reason=f"screen failure: {reasons}")
    return patient


def patient_end(*, patient: Patient, by, status: str, end_date: date, reason: str) -> Patient:
    """End of study (completed) or withdrawal: the remaining visits are closed."""
    reason = reason.strip()
    errors = {}
    if status not in (Patient.Status.COMPLETED, Patient.Status.WITHDRAWN):
        errors["status"] = _("Choose completed or withdrawn.")
    if not reason:
        errors["reason"] = _("Give the reason.")
    if end_date > timezone.localdate():
        errors["end_date"] = _("The date cannot be in the future.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        patient = _locked(patient)
        if patient.status != Patient.Status.ENROLLED:
            raise ValidationError(_("Only an enrolled patient can end the study."))
        if patient.day0_date and end_date < patient.day0_date:
            raise ValidationError({"end_date": _("The date is before inclusion.")})
        with audited(by=by, reason=f"{status} on {end_date.isoformat()}: {reason}"):
            patient.status = status
            patient.end_date = end_date
            patient.end_reason = reason[:300]
            patient.save(update_fields=["status", "end_date", "end_reason"])
        visits_close_remaining(patient=patient, by=by, reason=f"{status}: {reason}")
    return patient


def patient_record_death(*, patient: Patient, by, death_date: date, reason: str) -> Patient:
    """The patient died (a grade 5 adverse event): participation ends, visits are closed.

    For a patient already recorded dead, the date of death is corrected (the safety rules
    allow only the event that recorded the death to move it). Called by the safety
    services inside the event's transaction.
    """
    with transaction.atomic():
        patient = _locked(patient)
        if patient.status == Patient.Status.DIED:
            if patient.end_date != death_date:
                with audited(by=by, reason=reason):
                    patient.end_date = death_date
                    patient.save(update_fields=["end_date"])
            return patient
        if patient.status not in (Patient.Status.SCREENING, Patient.Status.ENROLLED):
            # Completed or withdrawn before the event was recorded: the end stands.
            return patient
        with audited(by=by, reason=reason):
            patient.status = Patient.Status.DIED
            patient.end_date = death_date
            patient.end_reason = reason[:300]
            patient.save(update_fields=["status", "end_date", "end_reason"])
        visits_close_remaining(patient=patient, by=by, reason=reason)
    return patient
