"""SAE reports: the initial report and numbered follow-ups to the sponsor, the sponsor's
acknowledgement, and the report of a SUSAR to the authorities.

Submitting asks for the investigator's password; each submitted report is emailed to the
protocol's safety contacts once (a `SaeNotification` row and the claimed `OutboundEmail`).
"""

from __future__ import annotations

from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.accounts.reauth import reauthenticate
from ecrf.audit.context import audited
from ecrf.notifications.services import email_queue
from ecrf.patients.form_index import form_index_remove, form_index_sync
from ecrf.patients.locks import require_unlocked
from ecrf.safety.clock import sae_due_at
from ecrf.safety.emails import sae_report_email
from ecrf.safety.models import AdverseEvent, SaeNotification, SaeReport
from ecrf.safety.rules import AE_FIELDS

SAE_EMAIL_KIND = "sae_report"


def sae_initial_report_follow(event: AdverseEvent) -> None:
    """After an event is saved: its pending initial report follows its seriousness.

    Marked serious, the event gets its initial report, due `sae_report_deadline_hours`
    after the site became aware of the seriousness (the pending report's clock follows a
    corrected awareness); downgraded before anything was sent, the pending report goes.
    Runs inside the event's transaction and audit context.
    """
    pending = event.sae_reports.filter(number=0, submitted_at__isnull=True).first()
    if event.serious:
        # The clock runs from the awareness of the seriousness, not of the event.
        hours = event.protocol_version.protocol.safety.sae_report_deadline_hours
        start = event.serious_aware_at
        due = sae_due_at(start, hours)
        if not event.sae_reports.exists():
            form_index_sync(
                SaeReport.objects.create(adverse_event=event, number=0, aware_at=start, due_at=due)
            )
        elif pending is not None and (pending.aware_at, pending.due_at) != (start, due):
            pending.aware_at, pending.due_at = start, due
            pending.save(update_fields=["aware_at", "due_at"])
    elif pending is not None:
        # Downgraded before anything was sent: there is nothing to report.
        form_index_remove(pending)
        pending.delete()


def _snapshot(event: AdverseEvent) -> dict:
    snap = {}
    for name in AE_FIELDS:
        value = getattr(event, name)
        snap[name] = value.isoformat() if isinstance(value, date | datetime) else value
    snap["sponsor_relatedness"] = event.sponsor_relatedness
    return snap


def _check_password(by, password: str, request) -> None:
    # Before the submission's transaction: a wrong password's record and its count towards
    # the lockout must not roll back with the refusal.
    reauthenticate(request, by, password)


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
    request=None,
) -> SaeReport:
    """The investigator sends the initial report (password re-entry); the sponsor is emailed.

    `now` is the moment of submission: the clock, except for the demo data's history
    (views never pass it). `request`, from the screen, reaches the password re-entry
    (`reauthenticate`: the address recorded, the session ended at the lockout).
    """
    now = now or timezone.now()
    event = report.adverse_event
    require(by, Action.SUBMIT_SAE, patient=event.patient)
    _check_password(by, password, request)
    with transaction.atomic():
        # The event first, as ae_update locks it: a downgrade to non-serious (which deletes
        # the pending report) and this submission cannot interleave.
        event = (
            AdverseEvent.objects.select_for_update(of=("self",))
            .select_related("patient")
            .get(pk=report.adverse_event_id)
        )
        # Frozen or locked, the casebook takes no report: an SAE on a locked casebook is
        # recorded once a data manager has lifted the lock, with the reason.
        require_unlocked(patient=event.patient, entry=event)
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
            form_index_sync(report)
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
    request=None,
) -> SaeReport:
    """A numbered follow-up of a submitted SAE: what changed since the last report.

    `now` and `request` as for `sae_submit_initial`.
    """
    require(by, Action.SUBMIT_SAE, patient=event.patient)
    _check_password(by, password, request)
    narrative = (narrative or "").strip()
    now = now or timezone.now()
    aware_at = aware_at or now
    with transaction.atomic():
        event = (
            AdverseEvent.objects.select_for_update(of=("self",))
            .select_related("patient")
            .get(pk=event.pk)
        )
        require_unlocked(patient=event.patient, entry=event)
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
            form_index_sync(report)
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
        # The sponsor's receipt changes no data of the site: a freeze lets it through (as
        # it lets review through), a lock does not.
        require_unlocked(patient=event.patient, entry=event, review=True)
        if report.submitted_at is None:
            raise ValidationError(_("This report has not been submitted yet."))
        if report.acknowledged_at is not None:
            raise ValidationError(_("This report was already acknowledged."))
        if now < report.submitted_at:
            raise ValidationError(_("A report is acknowledged after its submission."))
        with audited(by=by, reason=f"sponsor acknowledged {report}"):
            report.acknowledged_at, report.acknowledged_by = now, by
            report.save(update_fields=["acknowledged_at", "acknowledged_by"])
            form_index_sync(report)
            if sponsor_relatedness:
                AdverseEvent.objects.filter(pk=event.pk).update(
                    sponsor_relatedness=sponsor_relatedness
                )
    return report


def ae_authority_reported(*, event: AdverseEvent, by, at: datetime) -> AdverseEvent:
    """The sponsor records when the SUSAR was reported to the authorities (stops the clock)."""
    require(by, Action.ACKNOWLEDGE_SAE, patient=event.patient)
    with transaction.atomic():
        event = (
            AdverseEvent.objects.select_for_update(of=("self",))
            .select_related("patient")
            .get(pk=event.pk)
        )
        require_unlocked(patient=event.patient, entry=event, review=True)
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
            form_index_sync(event)
    return event
