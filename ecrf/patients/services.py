"""Writes on patients: keyword-only, atomic, audited through pghistory in the same transaction.

Enrolment and screen failure, which read the case report forms (consent, eligibility
checklist), are in `ecrf.crfs.enrolment`; the facts a form establishes about the patient
and a death recorded by the safety log come through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.patients.locks import require_unlocked
from ecrf.patients.models import Patient
from ecrf.patients.visits import (
    screening_visit_specs,
    visits_close_remaining,
    visits_create,
)
from ecrf.studies.models import StudySite
from ecrf.studies.protocol import VisitSpec


def patient_create(*, study, site, by, screening_date: date, group: str = "") -> Patient:
    """Screen a new patient at a site and give them the site's next subject code.

    The site's counter row is locked (SELECT ... FOR UPDATE), so concurrent screenings
    at one site get consecutive numbers and never the same code.
    """
    require(by, Action.ENROL, study=study, site=site)
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
        # No new casebook at a frozen or locked site, or in a frozen or locked study.
        require_unlocked(study=study, site=site)
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


def patient_locked(patient: Patient) -> Patient:
    """The patient row locked (SELECT ... FOR UPDATE) for a write, with its study, site and
    protocol version."""
    return (
        Patient.objects.select_for_update()
        .select_related("study", "site", "protocol_version")
        .get(pk=patient.pk)
    )


def _latest_inclusion(patient: Patient) -> tuple[date, VisitSpec, int] | None:
    """The latest day 0 the pre-inclusion visits' day ranges allow, from the protocol.

    A visit with `day_range: {min: -28, ...}` takes place at most 28 days before day 0,
    so day 0 falls at most 28 days after it: after the visit's date once recorded, after
    the screening date until then (the visit is never dated before it). Returns (latest
    day 0, the visit's spec, the days) for the visit that bounds it most, or None when no
    pre-inclusion visit has a day range (inclusion on the screening visit itself).
    """
    specs = [
        spec
        for spec in screening_visit_specs(patient.protocol_version.protocol)
        if spec.day_range is not None
    ]
    if not specs:
        return None
    dated = dict(
        patient.visits.filter(
            code__in=[spec.code for spec in specs], visit_date__isnull=False
        ).values_list("code", "visit_date")
    )
    bounds = []
    for spec in specs:
        days = max(0, -spec.day_range.min)
        start = dated.get(spec.code, patient.screening_date)
        bounds.append((start + timedelta(days=days), spec, days))
    return min(bounds, key=lambda bound: bound[0])


def patient_plan_inclusion(
    *, patient: Patient, by, planned_date: date | None, reason: str = ""
) -> Patient:
    """Record when inclusion (day 0) is planned for a patient in screening; None clears it.

    Reminders of what must be done before inclusion (a pregnancy test within the 7 days
    before it) count from this date. The date is a plan, not the inclusion: enrolment
    records day 0 itself and leaves the plan as it was.
    """
    require(by, Action.ENROL, patient=patient)
    reason = reason.strip()
    with transaction.atomic():
        patient = patient_locked(patient)
        require_unlocked(patient=patient)
        if patient.status != Patient.Status.SCREENING:
            raise ValidationError(
                _("Only a patient in screening has an inclusion to plan: %(code)s is %(status)s.")
                % {"code": patient.subject_code, "status": patient.get_status_display()}
            )
        if planned_date is not None:
            _check_planned_inclusion(patient, planned_date)
        if patient.planned_day0_date == planned_date:
            return patient
        what = "inclusion planned" if planned_date is not None else "planned inclusion cleared"
        with audited(by=by, reason=f"{what}: {reason}" if reason else what):
            patient.planned_day0_date = planned_date
            patient.save(update_fields=["planned_day0_date"])
    return patient


def _check_planned_inclusion(patient: Patient, planned_date: date) -> None:
    label = Patient._meta.get_field("planned_day0_date").verbose_name
    if planned_date < patient.screening_date:
        # Also a database constraint: refused here with a message, not a server error.
        raise ValidationError(
            {
                "planned_day0_date": _(
                    "%(field)s: %(date)s is before the screening date (%(screening)s)."
                )
                % {
                    "field": capfirst(label),
                    "date": date_format(planned_date, "SHORT_DATE_FORMAT"),
                    "screening": date_format(patient.screening_date, "SHORT_DATE_FORMAT"),
                }
            }
        )
    latest = _latest_inclusion(patient)
    if latest is not None and planned_date > latest[0]:
        latest_date, spec, days = latest
        raise ValidationError(
            {
                "planned_day0_date": ngettext(
                    "%(field)s: %(date)s is too late; visit %(visit)s must take place at most "
                    "%(days)d day before inclusion, so inclusion is on %(latest)s at the latest.",
                    "%(field)s: %(date)s is too late; visit %(visit)s must take place at most "
                    "%(days)d days before inclusion, so inclusion is on %(latest)s at the latest.",
                    days,
                )
                % {
                    "field": capfirst(label),
                    "date": date_format(planned_date, "SHORT_DATE_FORMAT"),
                    "visit": spec.code,
                    "days": days,
                    "latest": date_format(latest_date, "SHORT_DATE_FORMAT"),
                }
            }
        )


def patient_end(*, patient: Patient, by, status: str, end_date: date, reason: str) -> Patient:
    """End of study (completed) or withdrawal: the remaining visits are closed."""
    require(by, Action.ENROL, patient=patient)
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
        patient = patient_locked(patient)
        require_unlocked(patient=patient)
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
    services inside the event's transaction (which asked `require_unlocked` already; asked
    again here, so that no other caller writes a death into a locked casebook).
    """
    with transaction.atomic():
        patient = patient_locked(patient)
        require_unlocked(patient=patient)
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
