"""Investigator electronic signatures (21 CFR 11.50, 11.70, 11.200): a visit, or the whole
casebook, signed with the password; any later change to the signed data voids it.

What a signature covers is its canonical payload (`canonical_payload`), and it stores the
SHA-256 digest of it:

- a visit: ``{"study": <study id>, "patient": <subject code>, "visit": V}`` where V is
  ``{"id", "code", "repeat", "visit_date", "missed_reason", "forms": [F, ...]}`` and each
  form instance F of the visit (every form table, from the form index) is
  ``{"form": <form code>, "id": <instance id>, "key", "version", "status", "values":
  {field: value}}``, sorted by form code then id; the values are the fields a user enters
  (a CRF's answers, an adverse event's entered values, an SAE report's content);
- a casebook: ``{"study", "patient", "visits": [V, ...], "log": [F, ...]}``: every visit that
  took place or was declared missed, in the protocol's order, and the patient's log (the
  adverse events and the SAE reports).

Serialised as JSON with sorted keys, no spaces, UTF-8, dates and instants in ISO 8601
(Django's JSON encoder): the same data always give the same bytes.

A change reaches the signatures through the patients app's signals, whichever service
made it (crf_save, the AE and SAE services, the visit date): `patients.signals.
form_entry_saved` (every new version of an indexed instance, sent by form_index_sync) and
`patients.signals.visit_changed` (the visit's date, a missed visit). `signatures_void`
then recomputes the digest of each valid signature covering the change, in the change's
transaction and audit context, and voids those that differ, naming the change and its
author. `signature_valid` compares the digest again at any time, which catches a change
made behind the services' back.

Signing is refused on locked data and goes on through a freeze: a freeze stops changes,
and a signature changes no data (the interim analysis is when the investigator signs).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from ecrf.accounts.permissions import Action, require
from ecrf.accounts.reauth import reauthenticate
from ecrf.audit.context import audit_user_id, audited
from ecrf.crfs.base import CrfBase
from ecrf.patients.form_index import visit_lacks
from ecrf.patients.locks import casebook_locks, lock_message, visit_locks
from ecrf.patients.models import DataLock, FormIndexEntry, Patient, Visit
from ecrf.patients.visits import visit_required_forms
from ecrf.review.models import Signature
from ecrf.review.plan import AE_CODE, SAE_CODE
from ecrf.review.sdv import entry_model
from ecrf.safety.models import AdverseEvent, SaeReport
from ecrf.safety.rules import AE_FIELDS

REASON = "electronic signature"
# Set in the session by a successful signature: the next ones ask for the password only.
SESSION_SIGNED = "review.signed"
SAE_FIELDS = ("number", "aware_at", "narrative", "snapshot", "changes", "submitted_at")
# A visit whose data a signature covers: it took place, or was declared missed.
TOOK_PLACE = Q(visit_date__isnull=False) | Q(status=Visit.Status.MISSED)


# -- what a signature covers -------------------------------------------------------------------


def signed_fields(form_code: str) -> tuple[str, ...]:
    """The fields of a form instance that a signature vouches for: what a user enters."""
    if form_code == AE_CODE:
        return AE_FIELDS
    if form_code == SAE_CODE:
        return SAE_FIELDS
    model = entry_model(form_code)
    if issubclass(model, CrfBase):
        return tuple(model.answer_fields())
    return tuple(f.name for f in model._meta.concrete_fields if f.editable and not f.primary_key)


def _values(entries: Iterable[FormIndexEntry], *, lock: bool) -> dict[tuple[str, int], dict]:
    """The signed fields of each instance, one query per form table; `lock` takes the
    instances' rows as the save services do, so that a save waits for the signature."""
    ids = defaultdict(list)
    for entry in entries:
        ids[entry.form_code].append(entry.object_id)
    values = {}
    for code, pks in sorted(ids.items()):
        rows = entry_model(code).objects.filter(pk__in=pks).order_by("pk")
        if lock:
            rows = rows.select_for_update()
        for row in rows.values("pk", *signed_fields(code)):
            values[(code, row.pop("pk"))] = row
    return values


def _form(entry: FormIndexEntry, values: dict) -> dict:
    return {
        "form": entry.form_code,
        "id": entry.object_id,
        "key": entry.key,
        "version": entry.version,
        "status": entry.status,
        "values": values.get((entry.form_code, entry.object_id), {}),
    }


def _visit(visit: Visit, entries: list[FormIndexEntry], values: dict) -> dict:
    return {
        "id": visit.pk,
        "code": visit.code,
        "repeat": visit.repeat,
        "visit_date": visit.visit_date,
        "missed_reason": visit.missed_reason,
        "forms": [_form(e, values) for e in entries],
    }


@dataclass(frozen=True)
class Covered:
    """A canonical payload and what it covers (the signature's `scope`)."""

    payload: bytes
    scope: dict

    @property
    def digest(self) -> str:
        return signature_digest(self.payload)


def _covered(*, patient: Patient, visit: Visit | None, lock: bool = False) -> Covered:
    entries = FormIndexEntry.objects.filter(patient_id=patient.pk).order_by(
        "form_code", "object_id"
    )
    if visit is not None:
        visits = [visit]
        entries = list(entries.filter(visit_id=visit.pk))
    else:
        visits = list(
            Visit.objects.filter(TOOK_PLACE, patient_id=patient.pk).order_by("sequence", "repeat")
        )
        entries = list(entries)
    values = _values(entries, lock=lock)
    by_visit = defaultdict(list)
    for entry in entries:
        by_visit[entry.visit_id].append(entry)
    shown = {"study": patient.study_id, "patient": patient.subject_code}
    if visit is not None:
        shown["visit"] = _visit(visit, by_visit[visit.pk], values)
    else:
        shown["visits"] = [_visit(v, by_visit[v.pk], values) for v in visits]
        shown["log"] = [_form(e, values) for e in by_visit[None]]
    payload = json.dumps(
        shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder
    ).encode("utf-8")
    scope = {
        "visits": [v.pk for v in visits],
        "forms": [[e.form_code, e.object_id, e.version] for e in entries],
    }
    return Covered(payload=payload, scope=scope)


def canonical_payload(*, patient: Patient, visit: Visit | None = None) -> bytes:
    """The bytes a signature of this visit (None: the whole casebook) covers (see above)."""
    return _covered(patient=patient, visit=visit).payload


def signature_digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def signature_valid(signature: Signature) -> bool:
    """Whether the signature still holds: not voided, and the data it covers give the
    digest it recorded (recomputed now: a change behind the services' back shows)."""
    if signature.voided_at is not None:
        return False
    patient = Patient.objects.get(pk=signature.patient_id)
    visit = Visit.objects.get(pk=signature.visit_id) if signature.visit_id else None
    return signature_digest(canonical_payload(patient=patient, visit=visit)) == signature.digest


# -- what stands before a signature ------------------------------------------------------------


def _visit_name(visit: Visit) -> str:
    return f"{visit.code} #{visit.repeat}" if visit.repeat > 1 else visit.code


def _entry_name(patient: Patient, entry: FormIndexEntry, numbers: dict) -> str:
    protocol = patient.protocol_version.protocol
    if entry.form_code == SAE_CODE:
        return _("SAE report of %s") % numbers.get(entry.object_id, "?")
    if entry.form_code == AE_CODE:
        return numbers.get(entry.object_id, protocol.form_label(entry.form_code))
    label = protocol.form_label(entry.form_code)
    return f"{label} · {entry.key}" if entry.key else label


def _log_numbers(entries: list[FormIndexEntry]) -> dict[int, str]:
    """AE-003 for the adverse events and the SAE reports among these entries."""
    numbers = {}
    ae = [e.object_id for e in entries if e.form_code == AE_CODE]
    sae = [e.object_id for e in entries if e.form_code == SAE_CODE]
    if ae:
        for pk, number in AdverseEvent.objects.filter(pk__in=ae).values_list("pk", "number"):
            numbers[pk] = f"AE-{number:03d}"
    if sae:
        for pk, number in SaeReport.objects.filter(pk__in=sae).values_list(
            "pk", "adverse_event__number"
        ):
            numbers[pk] = f"AE-{number:03d}"
    return numbers


def visit_unsigned_forms(visit: Visit, entries: list[FormIndexEntry]) -> list[str]:
    """What keeps a visit from being signed: its forms in progress, its required forms
    missing ("mRSS (in progress)", "HAQ-DI (not entered)")."""
    patient = visit.patient
    protocol = patient.protocol_version.protocol
    problems = [
        _("%s (in progress)") % _entry_name(patient, e, {})
        for e in entries
        if e.status != FormIndexEntry.Status.COMPLETE
    ]
    problems += [
        _("%s (not entered)") % protocol.form_label(code)
        for code in visit_required_forms(visit)
        if visit_lacks(patient, code, entries)
        and not any(e.form_code == code and e.status != "complete" for e in entries)
    ]
    return problems


def casebook_unsigned_forms(patient: Patient) -> list[str]:
    """What keeps a casebook from being signed, visit by visit: forms in progress, the
    required forms of the visits that took place still missing, the visits whose window
    has closed and that were neither dated nor declared missed, SAE reports not submitted."""
    today = timezone.localdate()
    entries = list(FormIndexEntry.objects.filter(patient_id=patient.pk).order_by("form_code", "pk"))
    by_visit = defaultdict(list)
    for entry in entries:
        by_visit[entry.visit_id].append(entry)
    problems = []
    for visit in Visit.objects.filter(patient_id=patient.pk).order_by("sequence", "repeat"):
        visit.patient = patient
        name = _visit_name(visit)
        if visit.status in (Visit.Status.MISSED, Visit.Status.CLOSED):
            continue
        if visit.visit_date is None:
            if visit.latest_date is not None and visit.latest_date < today:
                problems.append(
                    _("%s: the window has closed; enter the visit or declare it missed.") % name
                )
            continue
        problems += [f"{name}: {p}" for p in visit_unsigned_forms(visit, by_visit[visit.pk])]
    log = [e for e in by_visit[None] if e.status != FormIndexEntry.Status.COMPLETE]
    numbers = _log_numbers(log)
    problems += [
        _("%s (not submitted)") % _entry_name(patient, e, numbers)
        if e.form_code == SAE_CODE
        else _("%s (in progress)") % _entry_name(patient, e, numbers)
        for e in log
    ]
    return problems


def _lock_refusal(locks: list[DataLock]) -> str | None:
    """A lock (not a freeze) over the data refuses the signature: locked data accept
    nothing, review included."""
    lock = next((lock for lock in locks if lock.kind == DataLock.Kind.LOCK), None)
    return None if lock is None else lock_message(lock)


def signature_refusal(*, patient: Patient, visit: Visit | None = None) -> str | None:
    """Why this visit (None: the casebook) cannot be signed now, in one sentence (None:
    it can). For the page, before it asks for the password; the services ask it again."""
    locks = visit_locks(visit) if visit is not None else casebook_locks(patient)
    if refusal := _lock_refusal(locks):
        return refusal
    if visit is not None:
        name = _visit_name(visit)
        if visit.visit_date is None:
            return _("Visit %s has not taken place: there is nothing to sign.") % name
        entries = list(FormIndexEntry.objects.filter(visit_id=visit.pk))
        if problems := visit_unsigned_forms(visit, entries):
            return _(
                "Visit %(visit)s cannot be signed until its forms are complete: %(forms)s."
            ) % {
                "visit": name,
                "forms": "; ".join(problems),
            }
    elif problems := casebook_unsigned_forms(patient):
        return _(
            "The casebook of %(patient)s cannot be signed until every form is complete: %(forms)s."
        ) % {"patient": patient.subject_code, "forms": "; ".join(problems)}
    signed = (
        Signature.objects.valid()
        .filter(patient_id=patient.pk, visit_id=visit.pk if visit is not None else None)
        .first()
    )
    if signed is not None:
        what = (
            _("Visit %s") % _visit_name(visit)
            if visit is not None
            else _("The casebook of %s") % patient.subject_code
        )
        return _(
            "%(what)s is already signed by %(who)s on %(when)s; a change to its data voids "
            "the signature, and it can then be signed again."
        ) % {"what": what, "who": signed.printed_name, "when": signed_when(signed, patient)}
    return None


def signed_when(signature: Signature, patient: Patient) -> str:
    """The instant of a signature in the site's time zone: "2026-12-15 10:00 CET"."""
    local = timezone.localtime(signature.signed_at, ZoneInfo(patient.site.timezone))
    return date_format(local, "Y-m-d H:i T")


# -- signing -----------------------------------------------------------------------------------


def printed_name(user) -> str:
    """The signer's name as the signature shows and stores it."""
    return user.get_full_name() or user.get_username()


def _sign(*, by, patient: Patient, visit: Visit | None, password, username, request) -> Signature:
    """The signing itself, once the caller asked the permission table."""
    first_of_session = request is not None and not request.session.get(SESSION_SIGNED)
    if first_of_session and not username:
        raise ValidationError(
            {
                "username": _(
                    "Username: type your username; the first signature of a session asks for "
                    "both your username and your password."
                )
            }
        )
    if refusal := signature_refusal(patient=patient, visit=visit):
        raise ValidationError(refusal)
    # Once the data may be signed, and outside the signature's transaction: a wrong
    # password is a failed login, whose record (and lockout count) must not roll back with
    # the refusal.
    reauthenticate(request, by, password, username=username)
    with transaction.atomic():
        # The casebook's row: two signings of one casebook take turns; what was checked
        # before the password is checked again under it.
        patient = (
            Patient.objects.select_for_update(of=("self",))
            .select_related("site", "protocol_version")
            .get(pk=patient.pk)
        )
        if visit is not None:
            visit = Visit.objects.get(pk=visit.pk)
            visit.patient = patient
        if refusal := signature_refusal(patient=patient, visit=visit):
            raise ValidationError(refusal)
        covered = _covered(patient=patient, visit=visit, lock=True)
        meaning = Signature.Meaning.VISIT if visit is not None else Signature.Meaning.CASEBOOK
        with audited(by=by, reason=REASON):
            signature = Signature.objects.create(
                patient=patient,
                visit=visit,
                signer=by,
                signed_at=timezone.now(),
                meaning=meaning,
                attestation=str(meaning.label),
                printed_name=printed_name(by),
                digest=covered.digest,
                scope=covered.scope,
            )
    if request is not None:
        request.session[SESSION_SIGNED] = True
    return signature


def visit_sign(
    *, by, visit: Visit, password: str, username: str | None = None, request=None
) -> Signature:
    """Sign a visit: the attestation that its data are accurate and complete.

    The investigator types the password (and the username on the first signing of the
    session, when `request` is given; the username given must be the signer's own). The
    visit must have taken place with every form complete and its required forms entered;
    locked data are refused, frozen data may be signed.
    """
    require(by, Action.SIGN, patient=visit.patient)
    return _sign(
        by=by,
        patient=visit.patient,
        visit=visit,
        password=password,
        username=username,
        request=request,
    )


def casebook_sign(
    *, by, patient: Patient, password: str, username: str | None = None, request=None
) -> Signature:
    """Sign a patient's whole casebook: every visit that took place and the patient's log.

    Refused while a form is in progress, a visit that took place lacks a required form,
    a visit whose window has closed was neither entered nor declared missed, or an SAE
    report is not submitted (the message lists them); otherwise as `visit_sign`.
    """
    require(by, Action.SIGN, patient=patient)
    return _sign(
        by=by, patient=patient, visit=None, password=password, username=username, request=request
    )


# -- a change voids ----------------------------------------------------------------------------


def signatures_void(
    *, patient_id: int, visit_id: int | None, change: Callable[[], str]
) -> list[Signature]:
    """Void the valid signatures of the changed visit and of the casebook whose data no
    longer give their digest, in the change's transaction and audit context.

    `change()` names it ("a change to mRSS M3"), called only when a signature is voided.
    One query when nothing is signed.
    """
    covering = Q(visit__isnull=True)
    if visit_id is not None:
        covering |= Q(visit_id=visit_id)
    signatures = list(
        Signature.objects.select_for_update()
        .valid()
        .filter(covering, patient_id=patient_id)
        .order_by("pk")
    )
    if not signatures:
        return []
    patient = Patient.objects.select_related("site").get(pk=patient_id)
    voided = []
    user_id, reason, now = audit_user_id(), "", timezone.now()
    for signature in signatures:
        visit = Visit.objects.get(pk=signature.visit_id) if signature.visit_id else None
        if signature_digest(canonical_payload(patient=patient, visit=visit)) == signature.digest:
            continue
        reason = reason or str(change())
        signature.voided_at, signature.voided_by_id, signature.void_reason = now, user_id, reason
        signature.save(update_fields=["voided_at", "voided_by", "void_reason"])
        voided.append(signature)
    return voided


def _form_change(entry: FormIndexEntry) -> str:
    patient = Patient.objects.select_related("protocol_version").get(pk=entry.patient_id)
    if entry.visit_id is None:
        what = _entry_name(patient, entry, _log_numbers([entry]))
        if entry.form_code == AE_CODE:
            what = _("adverse event %s") % what
        return _("a change to %s") % what
    visit = Visit.objects.get(pk=entry.visit_id)
    return _("a change to %(form)s %(visit)s") % {
        "form": _entry_name(patient, entry, {}),
        "visit": _visit_name(visit),
    }


def form_entry_saved(entry: FormIndexEntry) -> list[Signature]:
    """A form instance got a new version (or was created): void what it changed."""
    return signatures_void(
        patient_id=entry.patient_id,
        visit_id=entry.visit_id,
        change=lambda: _form_change(entry),
    )


def visit_changed(visit: Visit, field) -> list[Signature]:
    """A visit's date changed, or it was declared missed: void what it changed."""
    return signatures_void(
        patient_id=visit.patient_id,
        visit_id=visit.pk,
        change=lambda: (
            _("a change to the %(field)s of %(visit)s")
            % {"field": str(field.verbose_name), "visit": _visit_name(visit)}
        ),
    )


# -- what awaits a signature -------------------------------------------------------------------


def _valid_casebook_signature() -> Exists:
    return Exists(Signature.objects.valid().filter(patient_id=OuterRef("pk"), visit__isnull=True))


def casebooks_awaiting_signature(*, study, site=None) -> QuerySet[Patient]:
    """The casebooks the investigator should sign: the patient ended the study (completed,
    withdrawn, died), or every visit is done (complete, missed or closed), and there is no
    valid casebook signature. A queryset of patients (count it, or list it)."""
    patients = Patient.objects.filter(study=study)
    if site is not None:
        patients = patients.filter(site=site)
    undone = Visit.objects.filter(patient_id=OuterRef("pk")).exclude(
        status__in=[Visit.Status.COMPLETE, Visit.Status.MISSED, Visit.Status.CLOSED]
    )
    ended = Q(status__in=[Patient.Status.COMPLETED, Patient.Status.WITHDRAWN, Patient.Status.DIED])
    all_done = Q(status=Patient.Status.ENROLLED) & ~Exists(undone)
    return patients.filter(ended | all_done).exclude(_valid_casebook_signature())


def visits_awaiting_signature(*, study, site=None) -> QuerySet[Visit]:
    """The complete visits without a valid signature of their own."""
    visits = Visit.objects.filter(patient__study=study, status=Visit.Status.COMPLETE)
    if site is not None:
        visits = visits.filter(patient__site=site)
    return visits.exclude(Exists(Signature.objects.valid().filter(visit_id=OuterRef("pk"))))


def signed_visit_ids(visits: Iterable[int]) -> set[int]:
    """Which of these visits hold a valid signature: one query (the SDV matrix)."""
    return set(
        Signature.objects.valid()
        .filter(visit_id__in=list(visits))
        .values_list("visit_id", flat=True)
    )
