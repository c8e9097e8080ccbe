"""The protocol schedule for one patient: which visits exist, when, and in what order.

Every rule comes from the patient's protocol version: the visits, their windows and the
forms they require. Pre-inclusion visits (those that carry consent or eligibility)
exist from screening on; the others are created at enrolment, once day 0 is known.
A visit is dated inside its window, or outside it with a recorded deviation; visits
happen in protocol order, an earlier one being done or declared missed first.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.core.errors import StaleVersion
from ecrf.core.reasons import reason_problem
from ecrf.patients.form_index import visit_entries, visit_lacks
from ecrf.patients.locks import require_unlocked
from ecrf.patients.models import Deviation, Patient, Visit
from ecrf.patients.signals import visit_changed
from ecrf.studies.protocol import CULTURE_FORMS
from ecrf.studies.schedule import window_for

SCREENING_FORMS = frozenset({"consent", "eligibility"})
DONE = (Visit.Status.COMPLETE, Visit.Status.MISSED, Visit.Status.CLOSED)


def _fmt(day: date | None) -> str:
    return date_format(day, "SHORT_DATE_FORMAT") if day else "—"


def screening_visit_specs(protocol):
    """Visits held before day 0 is known: the scheduled ones carrying consent or eligibility."""
    return [
        spec
        for spec in protocol.visits
        if spec.kind == "scheduled" and SCREENING_FORMS & set(spec.form_codes)
    ]


def _sequence(protocol, code: str) -> int:
    return next(i for i, spec in enumerate(protocol.visits, start=1) if spec.code == code)


def visits_create(*, patient: Patient, specs, day0: date | None) -> list[Visit]:
    """Create the patient's visits for these protocol visits (windows once day 0 is known)."""
    protocol = patient.protocol_version.protocol
    created = []
    for spec in specs:
        window = window_for(spec, day0) if day0 else None
        created.append(
            Visit.objects.create(
                patient=patient,
                code=spec.code,
                sequence=_sequence(protocol, spec.code),
                protocol_version=patient.protocol_version,
                target_date=window.target if window else None,
                earliest_date=window.earliest if window else None,
                latest_date=window.latest if window else None,
            )
        )
    return created


def visits_schedule_from_day0(*, patient: Patient) -> None:
    """At enrolment: fill the windows of existing visits and create the remaining ones."""
    protocol = patient.protocol_version.protocol
    existing = {visit.code: visit for visit in patient.visits.all()}
    for code, visit in existing.items():
        window = window_for(protocol.visit(code), patient.day0_date)
        visit.target_date, visit.earliest_date, visit.latest_date = (
            window.target,
            window.earliest,
            window.latest,
        )
        visit.save(update_fields=["target_date", "earliest_date", "latest_date"])
    remaining = [
        spec for spec in protocol.visits if spec.kind != "unscheduled" and spec.code not in existing
    ]
    visits_create(patient=patient, specs=remaining, day0=patient.day0_date)


def consent_date(patient: Patient) -> date | None:
    """The date the patient signed the consent (a fact the consent form keeps on the patient)."""
    return patient.consent_date


def _check_version(visit: Visit, expected_version: int | None) -> None:
    if expected_version is not None and visit.version != expected_version:
        raise StaleVersion(str(visit))


def _earlier_visits(visit: Visit):
    return visit.patient.visits.filter(sequence__lt=visit.sequence).exclude(
        code__in=_unscheduled_codes(visit.patient)
    )


def _unscheduled_codes(patient: Patient) -> list[str]:
    return [s.code for s in patient.protocol_version.protocol.visits if s.kind == "unscheduled"]


def visit_date_problems(visit: Visit, visit_date: date) -> list[str]:
    """Reasons a visit cannot take place on this date, whatever deviation is recorded."""
    problems = []
    today = timezone.localdate()
    if visit_date > today:
        problems.append(_("A visit date cannot be in the future (today is %s).") % _fmt(today))
    if visit_date < visit.patient.screening_date:
        # Before consent is recorded this is the only lower bound, and day 0 (never before
        # the screening date) must be able to fall on the inclusion visit.
        problems.append(
            _("The visit date is before the patient's screening date (%s).")
            % _fmt(visit.patient.screening_date)
        )
    consented = consent_date(visit.patient)
    if consented and visit_date < consented:
        problems.append(
            _("The visit date is before the consent date (%s): nothing happens before consent.")
            % _fmt(consented)
        )
    previous = (
        _earlier_visits(visit).filter(visit_date__isnull=False).order_by("-visit_date").first()
    )
    if previous and visit_date < previous.visit_date:
        problems.append(
            _("The visit date is before the previous visit %(code)s (%(date)s).")
            % {"code": previous.code, "date": _fmt(previous.visit_date)}
        )
    following = (
        visit.patient.visits.filter(sequence__gt=visit.sequence, visit_date__isnull=False)
        .exclude(code__in=_unscheduled_codes(visit.patient))
        .order_by("visit_date")
        .first()
    )
    if following and visit_date > following.visit_date:
        # Met by a visit being re-dated: a later visit starts once this one is under way.
        problems.append(
            _("The visit date is after the next visit %(code)s (%(date)s).")
            % {"code": following.code, "date": _fmt(following.visit_date)}
        )
    spec = visit.patient.protocol_version.protocol.visit(visit.code)
    if spec.after_visit:
        anchor = visit.patient.visits.filter(code=spec.after_visit).first()
        if anchor and anchor.visit_date and visit_date < anchor.visit_date:
            problems.append(
                _("The visit date is before visit %(code)s (%(date)s) that it follows.")
                % {"code": anchor.code, "date": _fmt(anchor.visit_date)}
            )
        elif anchor and anchor.visit_date:
            problems.extend(_culture_problems(visit, spec, anchor, visit_date))
    return problems


def _culture_problems(visit: Visit, spec, anchor: Visit, visit_date: date) -> list[str]:
    """Macrophage results cannot be dated before the culture of the sample has had time."""
    laboratory = visit.patient.protocol_version.protocol.laboratory
    if laboratory is None or not CULTURE_FORMS & set(spec.form_codes):
        return []
    days = laboratory.culture_min_days
    if (visit_date - anchor.visit_date).days >= days:
        return []
    return [
        ngettext(
            "Visit %(visit)s holds the results of cultures that take at least %(days)d day "
            "after the blood sample of visit %(code)s (%(date)s): its earliest date is "
            "%(earliest)s.",
            "Visit %(visit)s holds the results of cultures that take at least %(days)d days "
            "after the blood sample of visit %(code)s (%(date)s): its earliest date is "
            "%(earliest)s.",
            days,
        )
        % {
            "visit": visit.code,
            "days": days,
            "code": anchor.code,
            "date": _fmt(anchor.visit_date),
            "earliest": _fmt(anchor.visit_date + timedelta(days=days)),
        }
    ]


def visit_order_problem(visit: Visit) -> str | None:
    """Why this visit cannot start yet: an earlier scheduled visit is neither done nor missed."""
    if visit.patient.status not in (Patient.Status.SCREENING, Patient.Status.ENROLLED):
        return _("The patient is %s: no visit can start.") % visit.patient.get_status_display()
    protocol = visit.patient.protocol_version.protocol
    spec = protocol.visit(visit.code)
    if spec.kind == "unscheduled":
        return None if visit.patient.day0_date else _("Unscheduled visits start after inclusion.")
    if visit.patient.status == Patient.Status.SCREENING and visit.code not in {
        s.code for s in screening_visit_specs(protocol)
    }:
        return _("Visit %s starts after inclusion.") % visit.code
    pending = _earlier_visits(visit).exclude(status__in=DONE).order_by("sequence").first()
    if pending and not (pending.status == Visit.Status.IN_PROGRESS and spec.kind == "follow_on"):
        return _("Visit %(code)s comes first: complete it or declare it missed.") % {
            "code": pending.code
        }
    return None


def visit_record_date(
    *,
    visit: Visit,
    by,
    visit_date: date,
    expected_version: int | None = None,
    deviation_category: str = "",
    deviation_reason: str = "",
    change_reason: str = "",
) -> Visit:
    """Date a visit, or change its date (with a reason for change).

    Outside its window the date needs a timing deviation (category and reason). A visit
    has one standing timing deviation at most: re-dated, its deviation follows the new
    date (the new days outside) or is closed when the new date is inside the window.
    """
    require(by, Action.ENTER, patient=visit.patient)
    deviation_reason = deviation_reason.strip()
    change_reason = change_reason.strip()
    with transaction.atomic():
        visit = Visit.objects.select_for_update().select_related("patient").get(pk=visit.pk)
        _check_version(visit, expected_version)
        require_unlocked(patient=visit.patient, visit=visit)
        if visit.status in DONE:
            raise ValidationError(_("Visit %s is closed: its date cannot change.") % visit.code)
        order = visit_order_problem(visit)
        if order:
            raise ValidationError(order)
        previous_date = visit.visit_date
        if previous_date == visit_date:
            return visit  # the date it already has: nothing changes, nothing to audit
        errors: dict[str, list[str]] = {}
        if previous_date is not None:
            problem = (
                reason_problem(change_reason, label=_("Reason for change"))
                if change_reason
                else _(
                    "Give the reason for changing the date (it was %s): every change to a "
                    "dated visit is kept in the audit trail with its reason."
                )
                % _fmt(previous_date)
            )
            if problem:
                errors["change_reason"] = [problem]
        problems = visit_date_problems(visit, visit_date)
        if problems:
            raise ValidationError({"visit_date": problems, **errors})
        window = (
            window_for(
                visit.patient.protocol_version.protocol.visit(visit.code), visit.patient.day0_date
            )
            if visit.patient.day0_date
            else None
        )
        outside = window.deviation_days(visit_date) if window else 0
        standing = visit.deviations.open().filter(category__in=Deviation.TIMING_CATEGORIES).first()
        # Re-dated outside again, the standing deviation's category and reason still hold
        # unless the user gives new ones.
        category = deviation_category or (standing.category if standing else "")
        reason = deviation_reason or (standing.reason if standing else "")
        if outside and not (category and reason):
            errors["visit_date"] = [
                _(
                    "%(date)s is outside the window of %(code)s (%(earliest)s to %(latest)s) "
                    "by %(days)+d days: record a protocol deviation (category and reason)."
                )
                % {
                    "date": _fmt(visit_date),
                    "code": visit.code,
                    "earliest": _fmt(window.earliest),
                    "latest": _fmt(window.latest),
                    "days": outside,
                }
            ]
        elif outside and category not in Deviation.TIMING_CATEGORIES:
            errors["deviation_category"] = [
                _(
                    "Deviation category: a visit that took place deviates by its timing "
                    "(%(categories)s); a visit that did not take place is declared missed."
                )
                % {
                    "categories": ", ".join(
                        str(Deviation.Category(c).label) for c in Deviation.TIMING_CATEGORIES
                    )
                }
            ]
        elif (
            outside and deviation_reason and not (standing and deviation_reason == standing.reason)
        ):
            problem = reason_problem(deviation_reason, label=_("Deviation reason"))
            if problem:
                errors["deviation_reason"] = [problem]
        if errors:
            raise ValidationError(errors)
        with audited(by=by, reason=change_reason or deviation_reason or "visit dated"):
            if standing and not outside:
                standing.closed_at = timezone.now()
                standing.closed_by = by
                standing.close_reason = change_reason
                standing.save(update_fields=["closed_at", "closed_by", "close_reason"])
            elif standing:
                standing.category, standing.reason, standing.days_outside = (
                    category,
                    reason,
                    outside,
                )
                standing.save(update_fields=["category", "reason", "days_outside"])
            elif outside:
                Deviation.objects.create(
                    patient=visit.patient,
                    visit=visit,
                    category=category,
                    reason=reason,
                    days_outside=outside,
                    recorded_by=by,
                )
            visit.visit_date = visit_date
            if visit.status == Visit.Status.PLANNED:
                visit.status = Visit.Status.IN_PROGRESS
            visit.version += 1
            visit.save()
            # What vouches for the visit as it was (a signature) learns of its new date.
            visit_changed.send(sender=Visit, visit=visit, field=Visit._meta.get_field("visit_date"))
    return visit


def visit_mark_missed(*, visit: Visit, by, reason: str, expected_version=None) -> Visit:
    """Declare a planned visit missed (a deviation), so the next one can start."""
    require(by, Action.ENTER, patient=visit.patient)
    reason = reason.strip()
    with transaction.atomic():
        visit = Visit.objects.select_for_update().select_related("patient").get(pk=visit.pk)
        _check_version(visit, expected_version)
        require_unlocked(patient=visit.patient, visit=visit)
        spec = visit.patient.protocol_version.protocol.visit(visit.code)
        if visit.status != Visit.Status.PLANNED or spec.kind != "scheduled":
            raise ValidationError(_("Only a planned scheduled visit can be declared missed."))
        if visit.patient.status != Patient.Status.ENROLLED or spec.target_day == 0:
            raise ValidationError(_("Inclusion visits cannot be missed."))
        if not reason:
            raise ValidationError({"reason": _("Say why the visit was missed.")})
        problem = reason_problem(reason, label=_("Reason the visit was missed"))
        if problem:
            raise ValidationError({"reason": problem})
        with audited(by=by, reason=reason):
            Deviation.objects.create(
                patient=visit.patient,
                visit=visit,
                category=Deviation.Category.MISSED_VISIT,
                reason=reason,
                recorded_by=by,
            )
            visit.status = Visit.Status.MISSED
            visit.missed_reason = reason
            visit.version += 1
            visit.save()
            visit_changed.send(sender=Visit, visit=visit, field=Visit._meta.get_field("status"))
    return visit


def visit_add_unscheduled(*, patient: Patient, by, code: str | None = None) -> Visit:
    require(by, Action.ENTER, patient=patient)
    protocol = patient.protocol_version.protocol
    specs = [s for s in protocol.visits if s.kind == "unscheduled"]
    spec = next((s for s in specs if s.code == code), specs[0] if specs and not code else None)
    if spec is None:
        raise ValidationError(_("This protocol has no such unscheduled visit."))
    if patient.status != Patient.Status.ENROLLED:
        raise ValidationError(_("Unscheduled visits are for enrolled patients."))
    with transaction.atomic(), audited(by=by, reason="unscheduled visit added"):
        Patient.objects.select_for_update().get(pk=patient.pk)
        require_unlocked(patient=patient)
        repeat = patient.visits.filter(code=spec.code).count() + 1
        return Visit.objects.create(
            patient=patient,
            code=spec.code,
            repeat=repeat,
            sequence=_sequence(protocol, spec.code),
            protocol_version=patient.protocol_version,
        )


def conditions_met(patient: Patient) -> set[str]:
    """The protocol form conditions that hold for this patient (facts kept on the patient by
    the forms that decide them: no query)."""
    return set(patient.conditions)


def patient_visit_forms(patient: Patient, visit_code: str, conditions: set[str]):
    """The protocol's forms of a visit that apply to this patient: group and conditions."""
    forms = patient.protocol_version.protocol.forms_for_visit(visit_code, patient.group or None)
    return [f for f in forms if f.condition is None or f.condition in conditions]


def visit_required_forms(visit: Visit) -> list[str]:
    """Form codes this visit requires for this patient (group and conditions applied)."""
    forms = patient_visit_forms(visit.patient, visit.code, conditions_met(visit.patient))
    return [f.form for f in forms if f.required]


def incomplete_forms(visit: Visit) -> str:
    """The visit's required forms still incomplete, by their protocol labels."""
    protocol = visit.patient.protocol_version.protocol
    entries = visit_entries(visit)
    return ", ".join(
        protocol.form(code).label
        for code in visit_required_forms(visit)
        if visit_lacks(visit.patient, code, entries)
    )


def visit_refresh_status(*, visit: Visit, by, required: list[str] | None = None) -> Visit:
    """A dated visit is complete when every form it requires is complete (and back if not).

    `required` is visit_required_forms(visit) when the caller has it already.
    """
    if visit.status not in (Visit.Status.IN_PROGRESS, Visit.Status.COMPLETE):
        return visit
    if required is None:
        required = visit_required_forms(visit)
    # One complete instance of each required form, or one per culture condition of the
    # group: read from the form index, one query whatever the number of forms.
    entries = visit_entries(visit)
    complete = not any(visit_lacks(visit.patient, code, entries) for code in required)
    status = Visit.Status.COMPLETE if complete else Visit.Status.IN_PROGRESS
    if status != visit.status:
        with audited(by=by, reason="visit forms complete" if complete else "visit form reopened"):
            visit.status = status
            visit.version += 1
            visit.save(update_fields=["status", "version"])
    return visit


def visits_close_remaining(*, patient: Patient, by, reason: str) -> int:
    """End of study or withdrawal: the visits not done are closed."""
    with audited(by=by, reason=reason):
        return patient.visits.exclude(status__in=DONE).update(
            status=Visit.Status.CLOSED, version=F("version") + 1
        )


def with_next_visit(patients):
    """Annotate patients with their next planned visit (code, target and window dates)."""
    next_visit = Visit.objects.filter(
        patient=OuterRef("pk"), status__in=[Visit.Status.PLANNED, Visit.Status.IN_PROGRESS]
    ).order_by("sequence", "repeat")
    return patients.annotate(
        next_visit_code=Subquery(next_visit.values("code")[:1]),
        next_visit_target=Subquery(next_visit.values("target_date")[:1]),
        next_visit_earliest=Subquery(next_visit.values("earliest_date")[:1]),
        next_visit_latest=Subquery(next_visit.values("latest_date")[:1]),
    )
