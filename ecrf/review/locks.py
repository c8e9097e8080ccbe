"""Freezing, locking and unlocking data: the data manager's services, and the pre-lock checklist.

A freeze stops every change of data while review goes on (SDV, queries answered); a lock
stops everything. Either covers one form, a visit, a patient's casebook, a site or the
whole study (the database lock). The save services of the lower apps refuse a change to
covered data (`ecrf.patients.locks.require_unlocked`); these services only place and lift
the locks, each with its reason, in the audit trail.

A study-wide lock needs the action at every site of the study (`require(...,
every_site=True)`); the others at the site of what they cover. A lock never goes away:
lifting it records who, when and why, and a new freeze or lock is a new row.

Placing a lock on a casebook (or a visit, or a form) takes the patient's row, as the save
services do: a save in flight commits before the lock or is refused after it. A site or
study lock takes no patient's row; it is placed at a moment announced to the sites, and a
save that began before it commits as it would have a second earlier.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.core.reasons import reason_problem
from ecrf.patients.locks import lock_day, lock_message, lock_person
from ecrf.patients.models import DataLock, FormIndexEntry, Patient, Visit
from ecrf.review.dashboard import overdue_visits
from ecrf.review.matrix import sdv_backlog
from ecrf.review.models import Query
from ecrf.review.signatures import casebooks_awaiting_signature
from ecrf.safety.models import SaeReport
from ecrf.studies.models import StudySite


@dataclass(frozen=True)
class Target:
    """What a freeze or lock covers: its level and the rows it names."""

    level: str
    study: object
    site: object = None
    patient: Patient | None = None
    visit: Visit | None = None
    entry: FormIndexEntry | None = None

    @property
    def study_wide(self) -> bool:
        return self.level == DataLock.Level.STUDY


def lock_target_for(*, study=None, site=None, patient=None, visit=None, entry=None) -> Target:
    """The level and rows of a target named by its most precise part.

    A form (its index entry, or the indexed instance: a CRF, an adverse event), a visit, a
    patient (the casebook), a site of a study, or a study. What is above a target comes
    from it (a visit's patient, site and study), so only that part is given, and the study
    beside a site.
    """
    named = [
        name
        for name, value in (("patient", patient), ("visit", visit), ("entry", entry))
        if value is not None
    ]
    if len(named) > 1 or (named and (study is not None or site is not None)):
        raise TypeError("name one target: a form, a visit, a patient, a site or a study")
    if entry is not None:
        rows = FormIndexEntry.objects.select_related("patient__study", "patient__site", "visit")
        if isinstance(entry, FormIndexEntry):
            entry = rows.get(pk=entry.pk)
        else:
            entry = rows.get(form_code=entry.index_code(), object_id=entry.pk)
        patient = entry.patient
        return Target(
            DataLock.Level.FORM,
            patient.study,
            patient.site,
            patient,
            entry.visit,
            entry,
        )
    if visit is not None:
        visit = Visit.objects.select_related("patient__study", "patient__site").get(pk=visit.pk)
        patient = visit.patient
        return Target(DataLock.Level.VISIT, patient.study, patient.site, patient, visit)
    if patient is not None:
        patient = Patient.objects.select_related("study", "site").get(pk=patient.pk)
        return Target(DataLock.Level.PATIENT, patient.study, patient.site, patient)
    if study is None:
        raise TypeError("name one target: a form, a visit, a patient, a site or a study")
    if site is not None:
        return Target(DataLock.Level.SITE, study, site)
    return Target(DataLock.Level.STUDY, study)


def _reason(reason: str, *, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({field: _("Give the reason: it is kept in the audit trail.")})
    if problem := reason_problem(reason, label=_("Reason")):
        raise ValidationError({field: problem})
    return reason


def _place(kind: str, *, by, target: Target, reason: str) -> DataLock:
    if target.entry is not None and target.entry.form_code == SaeReport.index_code():
        # A report is never changed once sent, and a pending one may go with its event's
        # seriousness: the event's lock covers its reports (the SAE services ask it).
        raise ValidationError(_("Freeze or lock the adverse event: its SAE reports follow it."))
    reason = _reason(reason)
    if (
        target.level == DataLock.Level.SITE
        and not StudySite.objects.filter(study=target.study, site=target.site).exists()
    ):
        raise ValidationError(_("Site %s does not take part in this study.") % target.site.code)
    with transaction.atomic():
        if target.patient is not None:
            # Taken as the save services take it: a save in flight finishes first.
            Patient.objects.select_for_update().filter(pk=target.patient.pk).first()
        existing = DataLock.objects.active().filter(
            kind=kind,
            level=target.level,
            study=target.study,
            site=target.site,
            patient=target.patient,
            visit=target.visit,
            entry=target.entry,
        )
        if (
            lock := existing.select_related("placed_by", "study", "site", "patient").first()
        ) is not None:
            raise ValidationError(_("Already in place. %s") % lock_message(lock))
        what = "freeze" if kind == DataLock.Kind.FREEZE else "lock"
        with audited(by=by, reason=f"{target.level} {what}: {reason}"):
            try:
                with transaction.atomic():
                    return DataLock.objects.create(
                        kind=kind,
                        level=target.level,
                        study=target.study,
                        site=target.site,
                        patient=target.patient,
                        visit=target.visit,
                        entry=target.entry,
                        reason=reason,
                        placed_by=by,
                    )
            except IntegrityError:  # placed by someone else a moment ago
                lock = existing.select_related("placed_by", "study", "site", "patient").first()
                if lock is None:
                    raise
                raise ValidationError(_("Already in place. %s") % lock_message(lock)) from None


def data_freeze(
    *, by, reason: str, study=None, site=None, patient=None, visit=None, entry=None
) -> DataLock:
    """Freeze a form, a visit, a casebook, a site or a study: its data cannot change any
    more, while review goes on (SDV, queries). Name the target by its most precise part."""
    target = lock_target_for(study=study, site=site, patient=patient, visit=visit, entry=entry)
    if target.study_wide:
        require(by, Action.FREEZE, study=target.study, every_site=True)
    else:
        require(by, Action.FREEZE, study=target.study, site=target.site)
    return _place(DataLock.Kind.FREEZE, by=by, target=target, reason=reason)


def data_lock(
    *, by, reason: str, study=None, site=None, patient=None, visit=None, entry=None
) -> DataLock:
    """Lock a form, a visit, a casebook, a site or a study: nothing changes any more,
    review included. A lock may stand over a freeze; lifting it leaves the data frozen.

    A study lock is the database lock: look at `study_lock_checklist` first (the screen
    shows it before asking).
    """
    target = lock_target_for(study=study, site=site, patient=patient, visit=visit, entry=entry)
    if target.study_wide:
        require(by, Action.LOCK, study=target.study, every_site=True)
    else:
        require(by, Action.LOCK, study=target.study, site=target.site)
    return _place(DataLock.Kind.LOCK, by=by, target=target, reason=reason)


def data_unlock(*, by, lock: DataLock, reason: str) -> DataLock:
    """Lift a freeze or a lock, with the reason (a correction after an audit, an SAE to
    record on a locked casebook...). The row stays, with who lifted it, when and why."""
    if lock.level == DataLock.Level.STUDY:
        require(by, Action.UNLOCK, study=lock.study_id, every_site=True)
    else:
        require(by, Action.UNLOCK, study=lock.study_id, site=lock.site_id)
    reason = _reason(reason)
    with transaction.atomic():
        lock = (
            DataLock.objects.select_for_update(of=("self",))
            .select_related("placed_by", "lifted_by", "study", "site", "patient")
            .get(pk=lock.pk)
        )
        if lock.lifted_at is not None:
            raise ValidationError(
                _("This was lifted already, by %(who)s on %(date)s.")
                % {
                    "who": lock_person(lock.lifted_by),
                    "date": lock_day(lock, lifted=True),
                }
            )
        what = "freeze" if lock.kind == DataLock.Kind.FREEZE else "lock"
        with audited(by=by, reason=f"{lock.level} {what} lifted: {reason}"):
            lock.lifted_by, lock.lifted_at, lock.lift_reason = by, timezone.now(), reason
            lock.save(update_fields=["lifted_by", "lifted_at", "lift_reason"])
    return lock


# -- before the database lock -----------------------------------------------------------------


@dataclass(frozen=True)
class ChecklistItem:
    """One line of the pre-lock checklist: what still stands, how many, where to see them.

    `count` is None for what this installation does not track.
    """

    code: str
    label: str
    count: int | None
    url: str = ""

    @property
    def clear(self) -> bool:
        return self.count == 0


# What the other parts of the review (issue 13) will count, each in its own module: until
# then the checklist says "not tracked yet" rather than a reassuring 0.
def _open_queries(study) -> int | None:
    """Queries not closed (open, answered, reopened): each needs the reviewer or the site."""
    return Query.objects.filter(patient__study=study).unresolved().count()


def _sdv_not_done(study) -> int:
    """The complete forms the SDV plan requires that are not verified, at every site: the
    matrix's backlog (one query, and one for the study's protocol versions)."""
    versions = {version.pk: version for version in study.protocol_versions.all()}
    return sdv_backlog(Patient.objects.filter(study=study), versions=versions)


def _casebooks_not_signed(study) -> int | None:
    return casebooks_awaiting_signature(study=study).count()


def study_lock_checklist(study) -> list[ChecklistItem]:
    """What still stands before the study's database lock, each with a link to the list.

    Counts the whole study (every site: the lock is study-wide), a few queries whatever the
    number of patients.
    """
    today = timezone.localdate()
    code = study.code
    return [
        ChecklistItem(
            "open_queries",
            gettext_lazy("Open queries"),
            _open_queries(study),
            reverse("review:queries", args=[code]),
        ),
        ChecklistItem(
            "sdv",
            gettext_lazy("Required source data verification not done"),
            _sdv_not_done(study),
            reverse("review:matrix", args=[code]),
        ),
        ChecklistItem(
            "signatures",
            gettext_lazy("Casebooks not signed by the investigator"),
            _casebooks_not_signed(study),
            reverse("review:signatures", args=[code]),
        ),
        ChecklistItem(
            "sae_not_reported",
            gettext_lazy("Serious adverse events whose initial report is not submitted"),
            SaeReport.objects.filter(
                adverse_event__patient__study=study, number=0, submitted_at__isnull=True
            ).count(),
            reverse("safety:sae_list", args=[code]),
        ),
        ChecklistItem(
            "screening",
            gettext_lazy("Patients still in screening"),
            Patient.objects.filter(study=study, status=Patient.Status.SCREENING).count(),
            reverse("patients:list", args=[code]) + "?status=screening",
        ),
        ChecklistItem(
            "overdue",
            gettext_lazy("Visits overdue"),
            overdue_visits(Visit.objects.filter(patient__study=study), today=today).count(),
            reverse("review:overdue_visits", args=[code]),
        ),
    ]
