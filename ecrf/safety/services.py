"""Writes of the safety domain: adverse events, SAE reports, safety-lab prompts.

Every function here is keyword-only and atomic, checks its rules before saving anything,
writes under an audit context, and queues emails on commit. Views only translate
requests into these calls and `ValidationError`s back into form errors.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.core.errors import StaleVersion
from ecrf.notifications.services import email_queue
from ecrf.patients.models import Patient
from ecrf.patients.visits import consent_date, visits_close_remaining
from ecrf.safety.clock import PartialDateError, partial_date_bounds, sae_due_at, site_date
from ecrf.safety.emails import sae_report_email
from ecrf.safety.models import (
    MEDDRA_CODE_RE,
    SAE_CRITERIA,
    AdverseEvent,
    LabAlert,
    SaeNotification,
    SaeReport,
)

# The fields an investigator enters; everything else is derived or set by a workflow.
AE_FIELDS = (
    "term",
    "meddra_llt_code",
    "meddra_pt_code",
    "onset_date",
    "end_date",
    "ongoing",
    "ctcae_grade",
    "serious",
    *SAE_CRITERIA,
    "relatedness",
    "expected",
    "action_taken",
    "outcome",
    "death_date",
    "aware_at",
    "serious_aware_at",
)
REQUIRED = ("term", "onset_date", "ctcae_grade", "relatedness", "action_taken", "outcome")
CHOICES = {
    "relatedness": AdverseEvent.Relatedness.values,
    "action_taken": AdverseEvent.Action.values,
    "outcome": AdverseEvent.Outcome.values,
}
CTCAE_GRADES = (1, 2, 3, 4, 5)
TERM_MAX_LENGTH = AdverseEvent._meta.get_field("term").max_length
MEDDRA_FIELDS = {"meddra_llt_code": "MedDRA LLT code", "meddra_pt_code": "MedDRA PT code"}
MEDDRA_CODE = re.compile(MEDDRA_CODE_RE.strip("^$"), re.ASCII)
# Patients whose log is still open for new events.
OPEN_STATUSES = (Patient.Status.SCREENING, Patient.Status.ENROLLED)
SAE_EMAIL_KIND = "sae_report"


# -- validation --------------------------------------------------------------------------------


def ae_problems(
    *,
    patient: Patient,
    values: dict,
    now: datetime | None = None,
    event: AdverseEvent | None = None,
) -> dict:
    """Every rule of scoring.md §6 and crf-spec.md's adverse_event, as field -> message.

    `event` is the event being changed, when it is a change. `serious_aware_at`, when the
    site became aware that the event is serious, starts the SAE clock: left empty, it is
    the event's `aware_at` (serious from the moment it was known), except when a recorded
    non-serious event turns serious, where it must be given.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    errors: dict[str, str] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, message)

    for field in REQUIRED:
        value = values.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            add(field, _("This field is required."))
    term = values.get("term")
    if isinstance(term, str) and len(term.strip()) > TERM_MAX_LENGTH:
        add("term", _("Keep the term within %d characters.") % TERM_MAX_LENGTH)
    elif isinstance(term, str) and len(term.strip().splitlines()) > 1:
        add("term", _("The term is one line: put details in the SAE narrative."))
    grade = values.get("ctcae_grade")
    if grade is not None and grade not in CTCAE_GRADES:
        add("ctcae_grade", _("The CTCAE grade is 1, 2, 3, 4 or 5."))
    for field, choices in CHOICES.items():
        if values.get(field) and values[field] not in choices:
            add(field, _("Choose one of: %s.") % ", ".join(choices))
    # The database refuses other codes too (ae_meddra_*_format); say so here, by field.
    for field, label in MEDDRA_FIELDS.items():
        code = values.get(field) or ""
        if code and not MEDDRA_CODE.fullmatch(code):
            add(field, _("%s: 8 digits (e.g. 10028813), or leave it empty.") % label)
    if values.get("expected") is None:
        add("expected", _("Say whether the event is expected (listed in the brochure)."))
    if values.get("aware_at") is None:
        add("aware_at", _("Give the date and time the site became aware of the event."))

    onset = None
    if values.get("onset_date"):
        try:
            onset = partial_date_bounds(values["onset_date"])
        except PartialDateError:
            add(
                "onset_date",
                _("Onset date: write YYYY-MM-DD, or YYYY-MM when the day is not known."),
            )
    end_date: date | None = values.get("end_date")
    death_date: date | None = values.get("death_date")
    aware_at: datetime | None = values.get("aware_at")
    if aware_at is not None and timezone.is_naive(aware_at):
        add("aware_at", _("Give the moment of awareness with its time zone."))
        aware_at = None
    consented = consent_date(patient)

    if consented is None:
        add("onset_date", _("Record the patient's consent first: the log opens at consent."))
    if onset is not None:
        earliest, latest = onset
        if earliest > today:
            add("onset_date", _("The onset date cannot be in the future."))
        elif consented is not None and latest < consented:
            add(
                "onset_date",
                _(
                    "Onset %(onset)s is before consent (%(consent)s): a condition present "
                    "before consent is pre-existing, recorded in the medical history, "
                    "not an adverse event."
                )
                % {"onset": values["onset_date"], "consent": consented.isoformat()},
            )
        elif patient.end_date and earliest > patient.end_date:
            add(
                "onset_date",
                _("Onset is after the patient's end of study (%s): the log is closed.")
                % patient.end_date.isoformat(),
            )
        if end_date is not None and end_date < earliest:
            add(
                "end_date",
                _("The end date %(end)s is before the onset date %(onset)s.")
                % {"end": end_date.isoformat(), "onset": values["onset_date"]},
            )
        if death_date is not None and death_date < earliest:
            add(
                "death_date",
                _("The date of death is before the onset date %s.") % values["onset_date"],
            )
        # The day the site became aware is the day on the site's calendar, not UTC's.
        if aware_at is not None and site_date(aware_at, patient.site.timezone) < earliest:
            add("aware_at", _("The site cannot have become aware before the onset."))

    if values.get("ongoing") and end_date is not None:
        add("end_date", _("Give an end date or tick 'ongoing', not both."))
    if not values.get("ongoing") and end_date is None:
        add("end_date", _("Give the end date, or tick 'ongoing'."))
    for field, day in (("end_date", end_date), ("death_date", death_date)):
        if day is not None and day > today:
            add(field, _("The date cannot be in the future."))
    if aware_at is not None and aware_at > now:
        add("aware_at", _("The moment of awareness cannot be in the future."))

    outcome = values.get("outcome")
    if grade == 5:
        if outcome != AdverseEvent.Outcome.FATAL:
            add("outcome", _("A grade 5 event (death) has the outcome 'fatal'."))
        if death_date is None:
            add("death_date", _("A grade 5 event needs the date of death."))
    elif outcome == AdverseEvent.Outcome.FATAL:
        add("ctcae_grade", _("An event with a fatal outcome is grade 5."))
    elif death_date is not None:
        # (For a grade 5 event it is the outcome that is wrong, and said so above.)
        add("death_date", _("A date of death goes with the outcome 'fatal' only."))
    if (
        death_date is not None
        and patient.status == Patient.Status.DIED
        and death_date != patient.end_date
    ):
        # A patient dies once. The date may be corrected on the event that recorded the
        # death (the patient's end date follows it), not contradicted by another event.
        others = patient.adverse_events.filter(ctcae_grade=5)
        if event is not None:
            others = others.exclude(pk=event.pk)
        if others.exists():
            add(
                "death_date",
                _("The patient's death is recorded on %s: give that date.")
                % patient.end_date.isoformat(),
            )

    ticked = [name for name in SAE_CRITERIA if values.get(name)]
    if values.get("serious"):
        if not ticked:
            add("serious", _("A serious event needs at least one seriousness criterion."))
    else:
        for name in ticked:
            add(
                name,
                _("A seriousness criterion is ticked but the event is not marked serious."),
            )
    if (grade == 5 or outcome == AdverseEvent.Outcome.FATAL) and not values.get("sae_death"):
        add("sae_death", _("An event that results in death is serious with 'results in death'."))
    elif values.get("sae_death") and grade != 5 and outcome != AdverseEvent.Outcome.FATAL:
        add("sae_death", _("'Results in death' goes with the outcome 'fatal' (grade 5)."))

    serious_aware_at: datetime | None = values.get("serious_aware_at")
    if not values.get("serious"):
        if serious_aware_at is not None:
            add(
                "serious_aware_at",
                _(
                    "A moment of awareness of seriousness is given but the event is not "
                    "marked serious."
                ),
            )
    elif serious_aware_at is None:
        # Defaulting to the event's awareness would make an event that became serious
        # days later overdue at once: the site says when it learned of the seriousness.
        if event is not None and not event.serious:
            add(
                "serious_aware_at",
                _("Give the date and time the site became aware that the event is serious."),
            )
    elif timezone.is_naive(serious_aware_at):
        add(
            "serious_aware_at",
            _("Give the moment of awareness of the seriousness with its time zone."),
        )
    else:
        if aware_at is not None and serious_aware_at < aware_at:
            add(
                "serious_aware_at",
                _(
                    "The site cannot have become aware that the event is serious before it "
                    "became aware of the event (%s, site time)."
                )
                % _site_time(aware_at, patient.site.timezone),
            )
        if serious_aware_at > now:
            add(
                "serious_aware_at",
                _(
                    "The moment the site became aware that the event is serious cannot be in "
                    "the future."
                ),
            )
    return errors


def _site_time(instant: datetime, zone: str) -> str:
    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"


def _entered(values: dict) -> dict:
    """The fields an investigator enters, the verbatim term without surrounding blanks."""
    values = {k: v for k, v in values.items() if k in AE_FIELDS}
    if isinstance(values.get("term"), str):
        values["term"] = values["term"].strip()
    return values


def _with_serious_clock(values: dict) -> dict:
    """Valid answers with the SAE clock's start: given, or the event's awareness for an
    event serious from the moment it was known; none for a non-serious event."""
    if not values.get("serious"):
        return {**values, "serious_aware_at": None}
    return {**values, "serious_aware_at": values.get("serious_aware_at") or values["aware_at"]}


# -- adverse events ----------------------------------------------------------------------------


def _locked_patient(patient: Patient) -> Patient:
    return Patient.objects.select_for_update().select_related("study", "site").get(pk=patient.pk)


def ae_create(*, patient: Patient, by, values: dict, lab_alert: LabAlert | None = None):
    """Record an adverse event in the patient's log; returns it.

    A serious event gets its pending initial SAE report, whose clock starts at
    `serious_aware_at` (by default `aware_at`: serious from the moment it was known); a
    grade 5 event ends the patient's participation. Answering a lab prompt links it.
    """
    require(by, Action.RECORD_AE, patient=patient)
    values = _entered(values)
    with transaction.atomic():
        patient = _locked_patient(patient)
        if patient.status not in OPEN_STATUSES and not patient.end_date:
            raise ValidationError(
                _("The patient's log is closed (%s).") % patient.get_status_display()
            )
        errors = ae_problems(patient=patient, values=values)
        if errors:
            raise ValidationError(errors)
        values = _with_serious_clock(values)
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
    values = _entered(values)
    with transaction.atomic():
        patient = _locked_patient(event.patient)
        event = AdverseEvent.objects.select_for_update().get(pk=event.pk)
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
        for name, value in _with_serious_clock(values).items():
            setattr(event, name, value)
        event.version += 1
        with audited(by=by, reason=reason):
            event.save()
            _after_save(event, patient=patient, by=by)
    return event


def _after_save(event: AdverseEvent, *, patient: Patient, by) -> None:
    pending = event.sae_reports.filter(number=0, submitted_at__isnull=True).first()
    if event.serious:
        # The clock runs from the awareness of the seriousness, not of the event.
        hours = event.protocol_version.protocol.safety.sae_report_deadline_hours
        start = event.serious_aware_at
        due = sae_due_at(start, hours)
        if not event.sae_reports.exists():
            SaeReport.objects.create(adverse_event=event, number=0, aware_at=start, due_at=due)
        elif pending is not None and (pending.aware_at, pending.due_at) != (start, due):
            pending.aware_at, pending.due_at = start, due
            pending.save(update_fields=["aware_at", "due_at"])
    elif pending is not None:
        # Downgraded before anything was sent: there is nothing to report.
        pending.delete()
    if event.ctcae_grade == 5 and patient.status in OPEN_STATUSES:
        reason = f"death: {event.label} {event.term}"
        patient.status = Patient.Status.DIED
        patient.end_date = event.death_date
        patient.end_reason = reason[:300]
        patient.save(update_fields=["status", "end_date", "end_reason"])
        visits_close_remaining(patient=patient, by=by, reason=reason)
    elif (
        event.ctcae_grade == 5
        and patient.status == Patient.Status.DIED
        and patient.end_date != event.death_date
    ):
        # The date of death corrected on the event that recorded it (ae_problems allows
        # no other event to disagree).
        patient.end_date = event.death_date
        patient.save(update_fields=["end_date"])


# -- SAE reports -------------------------------------------------------------------------------


def _snapshot(event: AdverseEvent) -> dict:
    snap = {}
    for name in AE_FIELDS:
        value = getattr(event, name)
        snap[name] = value.isoformat() if isinstance(value, date | datetime) else value
    snap["sponsor_relatedness"] = event.sponsor_relatedness
    return snap


def _check_password(by, password: str) -> None:
    if not password or not by.check_password(password):
        raise ValidationError({"password": _("Your password is not correct.")})


def _notify(report: SaeReport) -> None:
    event = report.adverse_event
    subject, body = sae_report_email(report)
    email = email_queue(
        dedupe_key=f"sae-report:{report.pk}",
        kind=SAE_EMAIL_KIND,
        recipients=event.protocol_version.protocol.safety.sponsor_safety_contacts,
        subject=subject,
        body=body,
    )
    SaeNotification.objects.get_or_create(report=report, defaults={"email": email})


def sae_submit_initial(
    *,
    report: SaeReport,
    by,
    password: str,
    narrative: str = "",
    now: datetime | None = None,
) -> SaeReport:
    """The investigator sends the initial report (password re-entry); the sponsor is emailed.

    `now` is the moment of submission: the clock, except for the demo data's history
    (views never pass it).
    """
    now = now or timezone.now()
    event = report.adverse_event
    require(by, Action.SUBMIT_SAE, patient=event.patient)
    _check_password(by, password)
    with transaction.atomic():
        # The event first, as ae_update locks it: a downgrade to non-serious (which deletes
        # the pending report) and this submission cannot interleave.
        event = AdverseEvent.objects.select_for_update().get(pk=report.adverse_event_id)
        report = SaeReport.objects.select_for_update().filter(pk=report.pk).first()
        if report is None or not event.serious:
            raise ValidationError(
                _("The event is not serious any more: there is no report to submit.")
            )
        if not report.is_initial:
            raise ValidationError(_("Only the initial report is submitted this way."))
        if report.submitted_at is not None:
            raise ValidationError(_("The initial report was already submitted."))
        report.snapshot = _snapshot(event)
        report.narrative = (narrative or "").strip()
        report.submitted_at, report.submitted_by = now, by
        with audited(by=by, reason=f"initial SAE report of {event.label} submitted"):
            report.save()
            _notify(report)
    return report


def sae_follow_up(
    *,
    event: AdverseEvent,
    by,
    password: str,
    narrative: str,
    aware_at: datetime | None = None,
    now: datetime | None = None,
) -> SaeReport:
    """A numbered follow-up of a submitted SAE: what changed since the last report.

    `now` as for `sae_submit_initial`.
    """
    require(by, Action.SUBMIT_SAE, patient=event.patient)
    _check_password(by, password)
    narrative = (narrative or "").strip()
    now = now or timezone.now()
    aware_at = aware_at or now
    with transaction.atomic():
        event = AdverseEvent.objects.select_for_update().get(pk=event.pk)
        if not event.serious:
            raise ValidationError(_("A follow-up report is for a serious adverse event only."))
        previous = event.sae_reports.order_by("-number").first()
        if previous is None or previous.submitted_at is None:
            raise ValidationError(_("Submit the initial report before a follow-up."))
        if aware_at > now:
            raise ValidationError({"aware_at": _("This moment cannot be in the future.")})
        if aware_at < previous.aware_at:
            raise ValidationError(
                {"aware_at": _("The new information cannot predate the previous report.")}
            )
        snapshot = _snapshot(event)
        # A field the previous report did not carry (added to the eCRF since) is not news.
        changes = [
            {"field": name, "old": previous.snapshot.get(name), "new": value}
            for name, value in snapshot.items()
            if name in previous.snapshot and previous.snapshot[name] != value
        ]
        if not changes and not narrative:
            raise ValidationError(
                {"narrative": _("Nothing changed since the last report: describe the news.")}
            )
        hours = event.protocol_version.protocol.safety.sae_report_deadline_hours
        with audited(by=by, reason=f"SAE follow-up {previous.number + 1} of {event.label}"):
            report = SaeReport.objects.create(
                adverse_event=event,
                number=previous.number + 1,
                aware_at=aware_at,
                due_at=sae_due_at(aware_at, hours),
                narrative=narrative,
                snapshot=snapshot,
                changes=changes,
                submitted_at=now,
                submitted_by=by,
            )
            _notify(report)
    return report


def sae_acknowledge(
    *, report: SaeReport, by, sponsor_relatedness: str = "", now: datetime | None = None
) -> SaeReport:
    """The sponsor records receipt: its first knowledge, which starts any SUSAR clock.

    `now` as for `sae_submit_initial`.
    """
    now = now or timezone.now()
    event = report.adverse_event
    require(by, Action.ACKNOWLEDGE_SAE, patient=event.patient)
    if sponsor_relatedness and sponsor_relatedness not in AdverseEvent.Relatedness.values:
        raise ValidationError(
            {
                "sponsor_relatedness": _("Choose one of: %s.")
                % ", ".join(AdverseEvent.Relatedness.values)
            }
        )
    with transaction.atomic():
        report = SaeReport.objects.select_for_update().get(pk=report.pk)
        if report.submitted_at is None:
            raise ValidationError(_("This report has not been submitted yet."))
        if report.acknowledged_at is not None:
            raise ValidationError(_("This report was already acknowledged."))
        if now < report.submitted_at:
            raise ValidationError(_("A report is acknowledged after its submission."))
        with audited(by=by, reason=f"sponsor acknowledged {report}"):
            report.acknowledged_at, report.acknowledged_by = now, by
            report.save(update_fields=["acknowledged_at", "acknowledged_by"])
            if sponsor_relatedness:
                AdverseEvent.objects.filter(pk=event.pk).update(
                    sponsor_relatedness=sponsor_relatedness
                )
    return report


def ae_authority_reported(*, event: AdverseEvent, by, at: datetime) -> AdverseEvent:
    """The sponsor records when the SUSAR was reported to the authorities (stops the clock)."""
    require(by, Action.ACKNOWLEDGE_SAE, patient=event.patient)
    with transaction.atomic():
        event = AdverseEvent.objects.select_for_update().get(pk=event.pk)
        first = event.sae_reports.filter(number=0).first()
        if not event.susar or first is None or first.acknowledged_at is None:
            raise ValidationError(_("Only an acknowledged SUSAR is reported to the authorities."))
        if at > timezone.now() or at < first.acknowledged_at:
            raise ValidationError(
                {"at": _("The date must be between the acknowledgement and now.")}
            )
        with audited(by=by, reason=f"{event.label} reported to the authorities"):
            event.authority_reported_at = at
            event.save(update_fields=["authority_reported_at"])
    return event


# -- safety-lab prompts ------------------------------------------------------------------------


def lab_alert_limits(analyte: str, alert, labs) -> tuple[bool, str]:
    """Whether the analyte's value is beyond the protocol's alert, and the limit in words."""
    value = getattr(labs, analyte)
    if value is None:
        return False, ""
    if alert.below is not None and value < Decimal(str(alert.below)):
        return True, f"< {alert.below:g}"
    if alert.above is not None and value > Decimal(str(alert.above)):
        return True, f"> {alert.above:g}"
    if alert.above_uln_ratio is not None:
        uln = getattr(labs, f"{analyte}_uln", None)
        if uln and value / uln > Decimal(str(alert.above_uln_ratio)):
            return True, f"> {alert.above_uln_ratio:g} × ULN ({_plain(uln)})"
    return False, ""


def _plain(number: Decimal) -> str:
    """45, 100, 0.5: the same text whether the value came from a form or from the database
    (which gives 45.0), and never an exponent (100 normalised is 1E+2)."""
    return format(Decimal(number).normalize(), "f")


def lab_alerts_refresh(*, labs, by) -> list[LabAlert]:
    """After a safety_labs save: open a prompt per value beyond its alert, withdraw corrected ones.

    Runs inside the form's transaction and audit context. Returns the prompts opened or
    reopened by this save.
    """
    protocol = labs.protocol_version.protocol
    alerts = protocol.safety.lab_alerts
    # Locked as ae_create and lab_alert_dismiss lock the prompt they answer, so that a
    # prompt answered meanwhile is not withdrawn or reopened behind the answer's back.
    existing = {a.analyte: a for a in LabAlert.objects.select_for_update().filter(labs=labs)}
    opened = []
    for analyte, alert in alerts.items():
        beyond, limit = lab_alert_limits(analyte, alert, labs)
        value = getattr(labs, analyte)
        current = existing.get(analyte)
        if beyond:
            if current is None:
                opened.append(
                    LabAlert.objects.create(
                        patient_id=labs.patient_id,
                        visit_id=labs.visit_id,
                        labs=labs,
                        analyte=analyte,
                        value=value,
                        limit=limit,
                    )
                )
                continue
            # A dismissal judged one value: another value beyond the limit asks again.
            reopen = current.status == LabAlert.Status.WITHDRAWN or (
                current.status == LabAlert.Status.DISMISSED and current.value != value
            )
            if reopen or (current.status == LabAlert.Status.OPEN and current.value != value):
                current.value, current.limit = value, limit
                current.status = LabAlert.Status.OPEN
                current.dismiss_reason, current.resolved_by, current.resolved_at = "", None, None
                current.save(
                    update_fields=[
                        "value",
                        "limit",
                        "status",
                        "dismiss_reason",
                        "resolved_by",
                        "resolved_at",
                    ]
                )
                if reopen:
                    opened.append(current)
        elif current is not None and current.status == LabAlert.Status.OPEN:
            current.status = LabAlert.Status.WITHDRAWN
            current.save(update_fields=["status"])
    return opened


def lab_alert_dismiss(*, alert: LabAlert, by, reason: str) -> LabAlert:
    """The investigator judges the value not an adverse event, and says why."""
    require(by, Action.RECORD_AE, patient=alert.patient)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for not recording an AE.")})
    with transaction.atomic():
        alert = LabAlert.objects.select_for_update().get(pk=alert.pk)
        if alert.status != LabAlert.Status.OPEN:
            raise ValidationError(_("This laboratory prompt is not open any more."))
        with audited(by=by, reason=f"lab prompt dismissed: {reason}"):
            alert.status = LabAlert.Status.DISMISSED
            alert.dismiss_reason = reason[:300]
            alert.resolved_by, alert.resolved_at = by, timezone.now()
            alert.save()
    return alert
