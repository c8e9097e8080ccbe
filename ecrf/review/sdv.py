"""Source data verification: a monitor or data manager marks forms verified, whole or
field by field; a change to verified data resets what it changed.

The marks (`SdvMark`) are the history, read in order; the form index holds the outcome
for the screens (`ecrf.review.states`). The services refuse, with a message, a form the
SDV plan does not require (`ecrf.review.plan`), a form not complete, a form already
verified, and a version other than the one the page showed; another site's form is
refused by the permission table (and is a 404 on the screens).

A change reaches the review through `patients.signals.form_entry_changed`: whichever save
service gave the instance its new version (crf_save, ae_update, enrolment...), the form
index has already reset the entry in the same transaction, and `sdv_entry_changed`
compares the verified version with the new one in the instance's audit events (one
query): the fields whose values changed are reset, by whoever changed them, and the
others stay verified. When the events cannot tell (a row older than its trail), the
whole form is reset.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audit_user_id, audited
from ecrf.core.errors import StaleVersion
from ecrf.crfs.base import CrfBase
from ecrf.patients.form_index import form_entry_review, indexed_models
from ecrf.patients.locks import require_unlocked
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.review.models import SdvMark
from ecrf.review.plan import AE_CODE, SAE_CODE, sdv_required
from ecrf.review.states import ReviewState, is_verified, transition_check
from ecrf.safety.rules import AE_FIELDS

WHOLE = ""  # the field of a mark on the whole form
REASON = "source data verified"


# -- what a form's fields are ------------------------------------------------------------------


@functools.cache
def _models() -> dict[str, type]:
    return {model.index_code(): model for model in indexed_models()}


def entry_model(form_code: str) -> type:
    """The model whose instances carry this form code in the index."""
    return _models()[form_code]


@functools.cache
def sdv_fields(form_code: str) -> tuple[str, ...]:
    """The fields a monitor verifies against the source, one by one: a form's answers, an
    adverse event's entered values. A form without any (an SAE report, whose content is
    the event's) is verified as a whole: its one "field" is the whole form."""
    model = entry_model(form_code)
    if form_code == AE_CODE:
        return AE_FIELDS
    if issubclass(model, CrfBase):
        return tuple(model.answer_fields())
    return (WHOLE,)


def field_label(form_code: str, name: str) -> str:
    if name == WHOLE:
        return _("the whole form")
    try:
        return str(entry_model(form_code)._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def verified_fields(marks: Iterable[SdvMark], fields: tuple[str, ...]) -> set[str]:
    """The fields verified now, from the marks in the order they were made."""
    verified: set[str] = set()
    for mark in marks:
        targets = set(fields) if mark.field == WHOLE else {mark.field}
        if mark.kind == SdvMark.Kind.VERIFY:
            verified |= targets
        else:
            verified -= targets
    return verified


def entry_verified_fields(entry: FormIndexEntry, marks: Iterable[SdvMark]) -> set[str]:
    """The fields of the entry's current version that are verified: the marks count only
    while the entry says they apply to its version."""
    if entry.review_version != entry.version:
        return set()
    return verified_fields(marks, sdv_fields(entry.form_code))


def entry_label(patient: Patient, entry: FormIndexEntry) -> str:
    """The form as the screens name it: its protocol label (an SAE report by its kind)."""
    if entry.form_code == SAE_CODE:
        return _("SAE report")
    return patient.protocol_version.protocol.form_label(entry.form_code)


# -- verifying ---------------------------------------------------------------------------------


def _lock_instances(entries: Iterable[FormIndexEntry]) -> set[tuple[str, int]]:
    """Lock the instances' rows, as every save service does before it writes a new version
    (and the form index entry): a save and a verification of the same form take turns,
    so that the save reads the verification it resets. Returns (form code, id) locked."""
    ids = defaultdict(list)
    for entry in entries:
        ids[entry.form_code].append(entry.object_id)
    locked = set()
    for code, pks in sorted(ids.items()):
        rows = entry_model(code).objects.select_for_update().filter(pk__in=pks).order_by("pk")
        locked |= {(code, pk) for pk in rows.values_list("pk", flat=True)}
    return locked


def _locked_entries(**where) -> list[FormIndexEntry]:
    return list(
        FormIndexEntry.objects.select_for_update(of=("self",))
        .select_related("patient__protocol_version")
        .filter(**where)
        .order_by("form_code", "object_id")
    )


def _refusal(patient: Patient, entry: FormIndexEntry) -> str | None:
    """Why this form cannot be verified now (None: it can)."""
    label = entry_label(patient, entry)
    if not sdv_required(patient, entry.form_code, entry):
        return _(
            "%(form)s is not in the SDV plan for this patient: there is nothing to verify."
        ) % {"form": label}
    if entry.status != FormIndexEntry.Status.COMPLETE:
        return _("%(form)s is %(status)s: only a complete form is verified.") % {
            "form": label,
            "status": str(entry.get_status_display()).lower(),
        }
    return None


def _verify(entry: FormIndexEntry, *, by, fields: tuple[str, ...] | None, now) -> None:
    """Record the marks and the entry's new state (inside the caller's audit context)."""
    all_fields = sdv_fields(entry.form_code)
    verified = entry_verified_fields(entry, SdvMark.objects.filter(entry=entry).order_by("pk"))
    targets = set(all_fields) if fields is None else set(fields)
    new = targets - verified
    if not new:
        label = entry_label(entry.patient, entry)
        raise ValidationError(_("%(form)s is already verified.") % {"form": label})
    wanted = [WHOLE] if fields is None else sorted(new)
    SdvMark.objects.bulk_create(
        SdvMark(
            entry=entry,
            patient_id=entry.patient_id,
            field=name,
            version=entry.version,
            kind=SdvMark.Kind.VERIFY,
            by=by,
            at=now,
        )
        for name in wanted
    )
    complete = (verified | new) >= set(all_fields)
    state = ReviewState.VERIFIED if complete else ReviewState.ENTERED
    transition_check(entry.review_state, state)
    form_entry_review(
        entry,
        review_state=state,
        review_version=entry.version,
        verified_by=by if complete else None,
        verified_at=now if complete else None,
    )


def sdv_mark(
    *,
    by,
    entry: FormIndexEntry,
    fields: Iterable[str] | None = None,
    expected_version: int | None = None,
) -> FormIndexEntry:
    """Mark a form instance verified: the whole form, or the `fields` given.

    `expected_version` is the version the page showed: another one (the site changed the
    form since) is refused (StaleVersion), so that nobody verifies what they did not see.
    The form is verified once every field is (or the whole form at once).
    """
    require(by, Action.SDV, patient=entry.patient)
    with transaction.atomic():
        _lock_instances([entry])
        (entry,) = _locked_entries(pk=entry.pk)
        patient = entry.patient
        if expected_version is not None and entry.version != expected_version:
            raise StaleVersion(entry_label(patient, entry))
        if refusal := _refusal(patient, entry):
            raise ValidationError(refusal)
        # A freeze lets the review go on; a lock stops it too.
        require_unlocked(patient=patient, visit=entry.visit, entry=entry, review=True)
        if fields is not None:
            fields = tuple(fields)
            if unknown := sorted(set(fields) - set(sdv_fields(entry.form_code))):
                raise ValidationError(_("Not fields of this form: %s.") % ", ".join(unknown))
            if not fields:
                raise ValidationError(_("Choose the fields you verified."))
        with audited(by=by, reason=REASON):
            _verify(entry, by=by, fields=fields, now=timezone.now())
    return entry


def sdv_due(patient: Patient, entries: Iterable[FormIndexEntry]) -> list[FormIndexEntry]:
    """The entries the plan requires that are complete and not yet wholly verified."""
    return [
        e
        for e in entries
        if e.status == FormIndexEntry.Status.COMPLETE
        and not is_verified(e)
        and sdv_required(patient, e.form_code, e)
    ]


def sdv_mark_visit(
    *, by, visit: Visit, expected_versions: Mapping[int, int] | None = None
) -> list[FormIndexEntry]:
    """Verify at once every form of the visit that the plan requires and that is complete.

    `expected_versions` ({entry id: version}) is what the page showed: a form changed or
    completed since is refused (StaleVersion) rather than verified unseen.
    """
    require(by, Action.SDV, patient=visit.patient)
    patient = Patient.objects.select_related("protocol_version").get(pk=visit.patient_id)
    with transaction.atomic():
        # The instances first, then their entries, in the save services' order.
        candidates = sdv_due(patient, FormIndexEntry.objects.filter(visit_id=visit.pk))
        locked = _lock_instances(candidates)
        require_unlocked(patient=patient, visit=visit, review=True)
        entries = _locked_entries(visit_id=visit.pk)
        due = sdv_due(patient, entries)
        if expected_versions is not None and any(
            expected_versions.get(e.pk) != e.version for e in due
        ):
            raise StaleVersion(_("Visit %s") % _visit_name(visit))
        # A form completed between the two reads is left for the next verification.
        due = [e for e in due if (e.form_code, e.object_id) in locked]
        if not due:
            raise ValidationError(
                _(
                    "Nothing to verify at visit %(visit)s: the forms the SDV plan requires "
                    "are verified, or not complete yet."
                )
                % {"visit": _visit_name(visit)}
            )
        now = timezone.now()
        with audited(by=by, reason=REASON):
            for entry in due:
                _verify(entry, by=by, fields=None, now=now)
    return due


def _visit_name(visit: Visit) -> str:
    return f"{visit.code} #{visit.repeat}" if visit.repeat > 1 else visit.code


# -- a change resets ---------------------------------------------------------------------------


@functools.cache
def _event_model(model: type):
    """The model's audit event table holding whole rows (pghistory's default trackers)."""
    for candidate in apps.get_models():
        if getattr(candidate, "pgh_tracked_model", None) is model:
            names = {f.name for f in candidate._meta.fields}
            if "version" in names:
                return candidate
    return None


def changed_fields(entry: FormIndexEntry, *, old: int, new: int) -> set[str] | None:
    """The verifiable fields whose values differ between two versions of the instance,
    from its audit events (one query); None when the events cannot tell."""
    fields = sdv_fields(entry.form_code)
    events = _event_model(entry_model(entry.form_code))
    if fields == (WHOLE,) or events is None:
        return None
    columns = [events._meta.get_field(name).attname for name in fields]
    rows = {}
    for row in (
        events.objects.filter(pgh_obj_id=entry.object_id, version__in=[old, new])
        .order_by("pgh_id")
        .values("version", *columns)
    ):
        rows[row["version"]] = row  # the last event of each version: what it ended as
    if old not in rows or new not in rows:
        return None
    return {
        name
        for name, column in zip(fields, columns, strict=True)
        if rows[old][column] != rows[new][column]
    }


def sdv_entry_changed(entry: FormIndexEntry, *, previous_review_version: int) -> None:
    """After a save gave a reviewed instance a new version (the index has reset it): reset
    the verified fields the change touched, by the user of the change's audit context,
    and carry the others forward to the new version."""
    fields = sdv_fields(entry.form_code)
    verified = verified_fields(SdvMark.objects.filter(entry_id=entry.pk).order_by("pk"), fields)
    if not verified:
        return
    changed = changed_fields(entry, old=previous_review_version, new=entry.version)
    reset = verified if changed is None else verified & changed
    remaining = verified - reset
    now, user_id = timezone.now(), audit_user_id()
    if reset:
        names = [WHOLE] if not remaining or changed is None else sorted(reset)
        SdvMark.objects.bulk_create(
            SdvMark(
                entry_id=entry.pk,
                patient_id=entry.patient_id,
                field=name,
                version=entry.version,
                kind=SdvMark.Kind.RESET,
                by_id=user_id,
                at=now,
            )
            for name in names
        )
    complete = remaining >= set(fields)
    columns = {
        "review_state": ReviewState.VERIFIED if complete else ReviewState.ENTERED,
        "review_version": entry.version if remaining else None,
    }
    if reset:
        columns |= {"sdv_reset_by_id": user_id, "sdv_reset_at": now}
    form_entry_review(entry, **columns)


def sdv_reset_fields(entry: FormIndexEntry) -> list[str]:
    """The fields the last reset covered (empty: never reset), for "SDV reset: ..."."""
    marks = list(SdvMark.objects.filter(entry_id=entry.pk, kind=SdvMark.Kind.RESET).order_by("-pk"))
    if not marks:
        return []
    last = [m for m in marks if m.at == marks[0].at]
    return sorted(m.field for m in last)
