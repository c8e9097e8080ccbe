"""Freeze and lock: whether data may change, asked by every save service before it writes.

A data manager freezes or locks a form, a visit, a patient's casebook, a site or the whole
study (`ecrf.review.locks` places and lifts them). Frozen data cannot change, while review
goes on (SDV, queries); locked data accept nothing, review included. Every service that
changes a patient's data calls `require_unlocked` with what it is about to change, inside
its transaction and before it writes, so the screens, the admin, a task or the API meet
the same refusal; the screens hide their edit buttons as a courtesy only.

This module lives in the patients app, below crfs and safety, because their save services
must ask it and may not import the review app above them.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from ecrf.patients.models import DataLock, FormIndexEntry, Patient, Visit

# What refuses a change of data, and what refuses a review action (SDV, a query).
DATA_CHANGE = (DataLock.Kind.LOCK, DataLock.Kind.FREEZE)
REVIEW = (DataLock.Kind.LOCK,)

# The lock that says most comes first: a lock before a freeze, then the broadest (lifting
# a visit's lock does not help while the whole study is locked), then the oldest.
_STRONGEST = Case(
    When(kind=DataLock.Kind.LOCK, then=Value(0)), default=Value(1), output_field=IntegerField()
)
_BROADEST = Case(
    *(
        When(level=level, then=Value(rank))
        for rank, level in enumerate(
            [
                DataLock.Level.STUDY,
                DataLock.Level.SITE,
                DataLock.Level.PATIENT,
                DataLock.Level.VISIT,
                DataLock.Level.FORM,
            ]
        )
    ),
    output_field=IntegerField(),
)
# The order the screens list locks in, as the refusals name them.
STRONGEST_FIRST = (_STRONGEST, _BROADEST, "placed_at", "pk")
_NAMES = ("placed_by", "study", "site", "patient", "visit", "entry__visit")


def _form_lock(entry) -> Q:
    """The lock of one form instance: its index entry, or an indexed instance itself (a CRF,
    an adverse event), found through its entry in the same query."""
    if isinstance(entry, FormIndexEntry):
        return Q(level=DataLock.Level.FORM, entry_id=entry.pk)
    return Q(
        level=DataLock.Level.FORM,
        entry__form_code=entry.index_code(),
        entry__object_id=entry.pk,
    )


def _covering(*, patient, visit, entry, study, site) -> Q:
    """The locks in place over this data: the study's, the site's, the casebook's, the
    visit's and the form's, as far as the caller names them."""
    if patient is None and visit is not None:
        patient = visit.patient
    if patient is not None:
        study, site = patient.study_id, patient.site_id
    elif study is None:
        raise TypeError("say what changes: a patient (visit, form), or a study and a site")
    study = getattr(study, "pk", study)
    site = getattr(site, "pk", site)
    if entry is not None and entry.pk is None:
        entry = None  # a form being created has no lock of its own yet
    visit_id = visit.pk if visit is not None else getattr(entry, "visit_id", None)
    where = Q(level=DataLock.Level.STUDY)
    if site is not None:
        where |= Q(level=DataLock.Level.SITE, site_id=site)
    if patient is not None:
        where |= Q(level=DataLock.Level.PATIENT, patient_id=patient.pk)
    if visit_id is not None:
        where |= Q(level=DataLock.Level.VISIT, visit_id=visit_id)
    if entry is not None:
        where |= _form_lock(entry)
    return Q(study_id=study) & where


def _in_place():
    return DataLock.objects.active().select_related(*_NAMES).order_by(*STRONGEST_FIRST)


def _locks_in_place(where: Q, *, first: bool = False):
    """The locks in place that `where` selects, with what names them, strongest first.

    Most data are under no lock: a first query without the joins says whether any holds
    (planning seven joins cost more than the rest of it), and only then a second one reads
    them with their study, site, patient, visit, form and who placed them."""
    ids = DataLock.objects.active().filter(where).order_by(*STRONGEST_FIRST)
    ids = ids.values_list("pk", flat=True)
    ids = [pk for pk in ids[:1]] if first else list(ids)
    if not ids:
        return None if first else []
    found = list(_in_place().filter(pk__in=ids))
    return found[0] if first else found


def active_lock(
    *,
    patient: Patient | None = None,
    visit: Visit | None = None,
    entry=None,
    study=None,
    site=None,
    kinds=DATA_CHANGE,
) -> DataLock | None:
    """The strongest freeze or lock in place over this data, in one query (None: none).

    `patient` (or `visit`, whose patient is loaded) says whose data; `visit` and `entry`
    (a FormIndexEntry, or the indexed instance: a CRF, an adverse event) narrow it to a
    visit and a form, whose own locks then count too. Without a patient (screening a new
    one), the study and the site. `kinds`: DATA_CHANGE for a change of data, REVIEW for a
    review action.
    """
    where = _covering(patient=patient, visit=visit, entry=entry, study=study, site=site)
    return _locks_in_place(where & Q(kind__in=list(kinds)), first=True)


def lock_message(lock: DataLock, *, protocol=None) -> str:
    """The refusal in one sentence: what is locked, by whom, since when, and what it means.

    `protocol` names a locked form (the patient's protocol, read when not given)."""
    locked = lock.kind == DataLock.Kind.LOCK
    names = {
        "study": lock.study.code,
        "site": lock.site.code if lock.site_id else "",
        "patient": lock.patient.subject_code if lock.patient_id else "",
        "visit": _visit_code(lock.visit) if lock.visit_id else "",
        "form": _form_label(lock, protocol) if lock.entry_id else "",
        "who": _person(lock.placed_by),
        "date": _day(lock),
    }
    level = lock.level
    if level == DataLock.Level.STUDY:
        text = (
            _("Study %(study)s is locked by %(who)s since %(date)s: no change is possible.")
            if locked
            else _(
                "Study %(study)s is frozen by %(who)s since %(date)s: data cannot change; "
                "review goes on."
            )
        )
    elif level == DataLock.Level.SITE:
        text = (
            _(
                "Site %(site)s of study %(study)s is locked by %(who)s since %(date)s: no "
                "change is possible."
            )
            if locked
            else _(
                "Site %(site)s of study %(study)s is frozen by %(who)s since %(date)s: data "
                "cannot change; review goes on."
            )
        )
    elif level == DataLock.Level.PATIENT:
        text = (
            _(
                "The casebook of %(patient)s is locked by %(who)s since %(date)s: no change "
                "is possible."
            )
            if locked
            else _(
                "The casebook of %(patient)s is frozen by %(who)s since %(date)s: data cannot "
                "change; review goes on."
            )
        )
    elif level == DataLock.Level.VISIT:
        text = (
            _(
                "Visit %(visit)s of %(patient)s is locked by %(who)s since %(date)s: no "
                "change is possible."
            )
            if locked
            else _(
                "Visit %(visit)s of %(patient)s is frozen by %(who)s since %(date)s: data "
                "cannot change; review goes on."
            )
        )
    elif lock.entry.visit_id is not None:
        text = (
            _(
                "Form %(form)s of visit %(visit)s of %(patient)s is locked by %(who)s since "
                "%(date)s: no change is possible."
            )
            if locked
            else _(
                "Form %(form)s of visit %(visit)s of %(patient)s is frozen by %(who)s since "
                "%(date)s: data cannot change; review goes on."
            )
        )
        names["visit"] = _visit_code(lock.entry.visit)
    else:
        # A form of the patient's log (an adverse event, an SAE report): at no visit.
        text = (
            _(
                "Form %(form)s of %(patient)s is locked by %(who)s since %(date)s: no change "
                "is possible."
            )
            if locked
            else _(
                "Form %(form)s of %(patient)s is frozen by %(who)s since %(date)s: data "
                "cannot change; review goes on."
            )
        )
    return text % names


def data_lock_refusal(
    *,
    patient: Patient | None = None,
    visit: Visit | None = None,
    entry=None,
    study=None,
    site=None,
    review: bool = False,
) -> str | None:
    """Why this data cannot change (or, with `review`, be reviewed): None when it can.

    A change of data is refused by a freeze and by a lock; a review action (SDV, a query)
    only by a lock. One query when nothing is locked.
    """
    lock = active_lock(
        patient=patient,
        visit=visit,
        entry=entry,
        study=study,
        site=site,
        kinds=REVIEW if review else DATA_CHANGE,
    )
    return None if lock is None else lock_message(lock)


def require_unlocked(
    *,
    patient: Patient | None = None,
    visit: Visit | None = None,
    entry=None,
    study=None,
    site=None,
    review: bool = False,
) -> None:
    """Refuse (ValidationError, code "locked") a change to frozen or locked data.

    A save service calls it inside its transaction, once it holds its row locks and before
    it writes: the services that place a lock on a casebook take the patient's row too, so
    a save in flight either commits before the lock or sees it.
    """
    message = data_lock_refusal(
        patient=patient, visit=visit, entry=entry, study=study, site=site, review=review
    )
    if message is not None:
        raise ValidationError(message, code="locked")


# -- what the screens show --------------------------------------------------------------------


def casebook_locks(patient: Patient) -> list[DataLock]:
    """Every freeze and lock in place over a casebook, strongest first (one query when
    there is none): the study's, the site's, the casebook's, and those of its visits and
    forms."""
    return _locks_in_place(
        Q(level=DataLock.Level.STUDY, study_id=patient.study_id)
        | Q(level=DataLock.Level.SITE, study_id=patient.study_id, site_id=patient.site_id)
        | Q(patient_id=patient.pk)
    )


def visit_locks(visit: Visit) -> list[DataLock]:
    """Every freeze and lock in place over a visit, strongest first (one query when there
    is none): those above it (study, site, casebook), its own, and those of its forms."""
    patient = visit.patient
    return _locks_in_place(
        Q(level=DataLock.Level.STUDY, study_id=patient.study_id)
        | Q(level=DataLock.Level.SITE, study_id=patient.study_id, site_id=patient.site_id)
        | Q(level=DataLock.Level.PATIENT, patient_id=patient.pk)
        | Q(level=DataLock.Level.VISIT, visit_id=visit.pk)
        | Q(level=DataLock.Level.FORM, entry__visit_id=visit.pk)
    )


def covers_everything(locks, *, levels=None) -> DataLock | None:
    """The first of these locks that holds over the whole of what a page shows: the study,
    the site, the casebook (and the visit, for a visit's page), i.e. not one form."""
    levels = levels or (DataLock.Level.STUDY, DataLock.Level.SITE, DataLock.Level.PATIENT)
    return next((lock for lock in locks if lock.level in levels), None)


def lock_target(lock: DataLock, *, protocol=None) -> str:
    """What a lock covers, briefly, for a list or a banner: "Visit M3 of BXP-001"."""
    if lock.level == DataLock.Level.STUDY:
        return _("Study %s") % lock.study.code
    if lock.level == DataLock.Level.SITE:
        return _("Site %s") % lock.site.code
    if lock.level == DataLock.Level.PATIENT:
        return _("Casebook of %s") % lock.patient.subject_code
    if lock.level == DataLock.Level.VISIT:
        return _("Visit %(visit)s of %(patient)s") % {
            "visit": _visit_code(lock.visit),
            "patient": lock.patient.subject_code,
        }
    if lock.entry.visit_id is not None:
        return _("Form %(form)s of visit %(visit)s of %(patient)s") % {
            "form": _form_label(lock, protocol),
            "visit": _visit_code(lock.entry.visit),
            "patient": lock.patient.subject_code,
        }
    return _("Form %(form)s of %(patient)s") % {
        "form": _form_label(lock, protocol),
        "patient": lock.patient.subject_code,
    }


def lock_person(user) -> str:
    return _person(user)


def lock_day(lock: DataLock, *, lifted: bool = False) -> str:
    """The day a lock was placed (or lifted), in its site's time zone."""
    return _day(lock, lifted=lifted)


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


def _day(lock: DataLock, *, lifted: bool = False) -> str:
    zone = lock.site.timezone if lock.site_id else settings.TIME_ZONE
    moment = timezone.localtime(lock.lifted_at if lifted else lock.placed_at, ZoneInfo(zone))
    return date_format(moment.date(), "DATE_FORMAT")


def _visit_code(visit: Visit) -> str:
    return f"{visit.code} #{visit.repeat}" if visit.repeat > 1 else visit.code


def _form_label(lock: DataLock, protocol=None) -> str:
    """The form's name in the patient's protocol (its code for a form the file lacks)."""
    protocol = protocol or lock.patient.protocol_version.protocol
    return protocol.form_label(lock.entry.form_code)


@dataclass(frozen=True)
class LockShown:
    """A freeze or lock as a banner or a list shows it: "Visit M3 of BXP-001 — Frozen by
    Diane Martin on 2 December 2026 (interim analysis)"."""

    lock: DataLock
    target: str
    who: str
    day: str

    @property
    def locked(self) -> bool:
        return self.lock.kind == DataLock.Kind.LOCK

    @property
    def lifted_day(self) -> str:
        return _day(self.lock, lifted=True) if self.lock.lifted_at else ""


def locks_shown(locks, *, protocol=None) -> list[LockShown]:
    """The locks with what the screens say of them (no query when `protocol` is given)."""
    return [
        LockShown(
            lock=lock,
            target=lock_target(lock, protocol=protocol),
            who=_person(lock.placed_by),
            day=_day(lock),
        )
        for lock in locks
    ]
