"""Adverse events: recording an event in the patient's log and changing it.

A serious event gets (or keeps in step) its pending initial SAE report, through
`sae_reports`; a grade 5 event ends the patient's participation.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.core.errors import StaleVersion
from ecrf.patients.form_index import form_index_sync
from ecrf.patients.locks import require_unlocked
from ecrf.patients.models import Patient
from ecrf.patients.services import patient_record_death
from ecrf.safety.models import AdverseEvent, LabAlert
from ecrf.safety.rules import (
    OPEN_STATUSES,
    ae_problems,
    entered_values,
    with_serious_clock,
)
from ecrf.safety.services.sae_reports import sae_initial_report_follow


def _locked_patient(patient: Patient) -> Patient:
    return Patient.objects.select_for_update().select_related("study", "site").get(pk=patient.pk)


def ae_create(*, patient: Patient, by, values: dict, lab_alert: LabAlert | None = None):
    """Record an adverse event in the patient's log; returns it.

    A serious event gets its pending initial SAE report, whose clock starts at
    `serious_aware_at` (by default `aware_at`: serious from the moment it was known); a
    grade 5 event ends the patient's participation. Answering a lab prompt links it.
    """
    require(by, Action.RECORD_AE, patient=patient)
    values = entered_values(values)
    with transaction.atomic():
        patient = _locked_patient(patient)
        # The patient's log is part of the casebook: frozen or locked, no new event.
        require_unlocked(patient=patient)
        if patient.status not in OPEN_STATUSES and not patient.end_date:
            raise ValidationError(
                _("The patient's log is closed (%s).") % patient.get_status_display()
            )
        errors = ae_problems(patient=patient, values=values)
        if errors:
            raise ValidationError(errors)
        values = with_serious_clock(values)
        if lab_alert is not None:
            lab_alert = LabAlert.objects.select_for_update().get(pk=lab_alert.pk)
            if lab_alert.patient_id != patient.pk or lab_alert.status != LabAlert.Status.OPEN:
                raise ValidationError(_("This laboratory prompt is not open any more."))
        last = patient.adverse_events.order_by("-number").values_list("number", flat=True).first()
        with audited(by=by, reason="adverse event recorded"):
            event = AdverseEvent.objects.create(
                patient=patient,
                number=(last or 0) + 1,
                protocol_version=patient.study.current_protocol or patient.protocol_version,
                created_by=by,
                **values,
            )
            form_index_sync(event)
            if lab_alert is not None:
                lab_alert.status = LabAlert.Status.AE_RECORDED
                lab_alert.adverse_event = event
                lab_alert.resolved_by, lab_alert.resolved_at = by, timezone.now()
                lab_alert.save()
            _after_save(event, patient=patient, by=by)
    return event


def ae_update(*, event: AdverseEvent, by, values: dict, expected_version: int, reason: str):
    """Change a recorded event; a reason is required and old/new values are audited.

    Turning a non-serious event serious needs `serious_aware_at`, when the site became
    aware of the seriousness: the SAE clock starts there, and `aware_at` stays the
    awareness of the event. Turning a serious event non-serious is refused once an SAE
    report was submitted (the reassessment goes in a follow-up); before that, the pending
    initial report is deleted and `serious_aware_at` cleared, the audit trail keeping
    both. Serious again later, the question is asked again.
    """
    require(by, Action.RECORD_AE, patient=event.patient)
    reason = (reason or "").strip()
    values = entered_values(values)
    with transaction.atomic():
        patient = _locked_patient(event.patient)
        event = AdverseEvent.objects.select_for_update().get(pk=event.pk)
        require_unlocked(patient=patient, entry=event)
        if event.version != expected_version:
            raise StaleVersion(f"{event.label} ({event.term})")
        errors = ae_problems(patient=patient, values=values, event=event)
        if not reason:
            errors.setdefault("reason", _("Give the reason for change."))
        submitted = event.sae_reports.filter(submitted_at__isnull=False).exists()
        if submitted and not values.get("serious"):
            errors.setdefault(
                "serious",
                _(
                    "An SAE report was submitted for this event: it stays serious. Send a "
                    "follow-up report with the reassessment."
                ),
            )
        if errors:
            raise ValidationError(errors)
        for name, value in with_serious_clock(values).items():
            setattr(event, name, value)
        event.version += 1
        with audited(by=by, reason=reason):
            event.save()
            form_index_sync(event)
            _after_save(event, patient=patient, by=by)
    return event


def _after_save(event: AdverseEvent, *, patient: Patient, by) -> None:
    sae_initial_report_follow(event)
    if event.ctcae_grade == 5:
        # A death ends the participation; correcting its date on the event that recorded
        # it moves the patient's end date (ae_problems allows no other event to disagree).
        patient_record_death(
            patient=patient,
            by=by,
            death_date=event.death_date,
            reason=f"death: {event.label} {event.term}",
        )
