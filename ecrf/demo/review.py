"""The demo's review: what Bordeaux's monitor, its investigator and the data manager did.

Every stage of the workflow is on screen once the demo is up (issue 13): forms verified,
one reset by a later correction; queries open for 3, 10, 20 and 40 days, one answered, one
closed, one reopened, and the system's own; a frozen visit; a signed visit, a voided
signature; a signed and locked casebook. All through the review's services, as the people
would have done it; only the age of the queries is set, by raising them at a past instant
(`query_create`, the step `query_raise` takes, after the same permission and lock checks),
since a demo of ageing needs queries that have aged.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ecrf.accounts.permissions import Action, require
from ecrf.audit.context import audited
from ecrf.crfs.models import FORM_MODELS
from ecrf.crfs.services import crf_save
from ecrf.patients.locks import require_unlocked
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.review.auto_queries import queries_raise_automatic
from ecrf.review.locks import data_freeze, data_lock
from ecrf.review.models import Query
from ecrf.review.queries import query_answer, query_close, query_create, query_reopen
from ecrf.review.sdv import sdv_mark_visit
from ecrf.review.signatures import casebook_sign, visit_sign

RCT = "NCT00479934"


def _visit(patient: Patient, code: str) -> Visit:
    return patient.visits.get(code=code, repeat=1)


def _entry(patient: Patient, code: str, form_code: str) -> FormIndexEntry:
    return FormIndexEntry.objects.get(visit=_visit(patient, code), form_code=form_code)


def _raise(by, entry: FormIndexEntry, field: str, text: str, *, days: int) -> Query:
    """A monitor's query on a field, raised `days` days ago (what `query_raise` checks)."""
    require(by, Action.RAISE_QUERY, patient=entry.patient)
    require_unlocked(patient=entry.patient, visit=entry.visit, entry=entry, review=True)
    at = timezone.now() - timedelta(days=days, hours=2)
    with transaction.atomic(), audited(by=by, reason="query raised"):
        return query_create(
            patient=entry.patient, entry=entry, visit=None, field=field, text=text, by=by, now=at
        )


def _correct(by, entry: FormIndexEntry, values: dict, *, reason: str):
    """A correction through the form's save service (the fields not given keep their value)."""
    instance = FORM_MODELS[entry.form_code].objects.get(pk=entry.object_id)
    return crf_save(
        visit=entry.visit,
        form_code=entry.form_code,
        values=values,
        by=by,
        expected_version=instance.version,
        reason=reason,
    )


def seed_review(users: dict, password: str) -> str:
    """The review's stages on the trial's Bordeaux patients; nothing if already done."""
    patients = {
        p.subject_code: p
        for p in Patient.objects.filter(study__code=RCT, site__code="BXP").select_related(
            "study", "site"
        )
    }
    if Query.objects.filter(patient__in=patients.values(), origin=Query.Origin.MANUAL).exists():
        return "review already in place"
    monitor = users["monitor.bordeaux"]
    investigator = users["investigator.bordeaux"]
    manager = users["datamanager"]
    completed, at_m6, late_m3 = patients["BXP-001"], patients["BXP-002"], patients["BXP-003"]

    # Source data verification: BXP-001's casebook and BXP-002's first three visits.
    verified = 0
    for patient, codes in (
        (completed, ("SCR", "M0", "M1", "M3", "M6", "M12")),
        (at_m6, ("SCR", "M0", "M1", "M3")),
    ):
        for code in codes:
            verified += len(sdv_mark_visit(by=monitor, visit=_visit(patient, code)))

    # Queries of every age and status, on mRSS areas and questionnaires.
    _raise(monitor, _entry(late_m3, "M3", "mrss"), "face", "Face scored higher than at M0 while "
           "every other area softened: please check the examination sheet.", days=3)  # fmt: skip
    _raise(monitor, _entry(at_m6, "M6", "dlqi"), "q1", "Question 1: two boxes are ticked on "
           "the paper questionnaire in the source file. Which one did the patient mean?",
           days=10)  # fmt: skip
    _raise(monitor, _entry(late_m3, "M0", "safety_labs"), "hemoglobin_g_dl", "The laboratory "
           "report in the source file is not dated: which sample is this?",
           days=20)  # fmt: skip
    _raise(monitor, _entry(at_m6, "M0", "haq"), "walk_outdoors", "The HAQ walking item "
           "disagrees with the examination note (walks with a stick): please check.",
           days=40)  # fmt: skip
    answered = _raise(monitor, _entry(at_m6, "M1", "mrss"), "hand_r", "Right hand 1 at M1 "
                      "and 2 at M0: is the change on the source?", days=12)  # fmt: skip
    query_answer(by=investigator, query=answered, text="Yes: the examination sheet of M1 "
                 "says 1 for the right hand, signed by the assessor.")  # fmt: skip
    closed = _raise(monitor, _entry(completed, "M6", "mrss"), "forearm_l", "Left forearm "
                    "scored 0 at M6: the source says 'slight thickening'?", days=30)  # fmt: skip
    query_answer(by=investigator, query=closed, text="Slight thickening was noted for the "
                 "right forearm; the left was normal, as entered.")  # fmt: skip
    query_close(by=monitor, query=closed, text="Checked on the source at the visit: settled.")
    reopened = _raise(monitor, _entry(late_m3, "M0", "mrss"), "abdomen", "Abdomen scored 1 at "
                      "M0: the source sheet gives 0.", days=16)  # fmt: skip
    query_answer(by=investigator, query=reopened, text="The assessor scored 1 at the "
                 "examination; the value is right.")  # fmt: skip
    query_reopen(by=monitor, query=reopened, text="The source sheet I read gives 0 for the "
                 "abdomen: please look at the original and correct if needed.")  # fmt: skip
    automatic = queries_raise_automatic()

    # Signatures: BXP-002's M1 stays signed; its M3 is signed, then corrected, which voids
    # the signature and resets the SDV of what changed. BXP-001's casebook is signed.
    visit_sign(by=investigator, visit=_visit(at_m6, "M1"), password=password)
    visit_sign(by=investigator, visit=_visit(at_m6, "M3"), password=password)
    mrss_m3 = _entry(at_m6, "M3", "mrss")
    _correct(
        investigator,
        mrss_m3,
        {"face": 2},
        reason="Transcription error: the examination sheet of M3 gives 2 for the face",
    )
    casebook_sign(by=investigator, patient=completed, password=password)

    # The data manager freezes BXP-002's M1 for the review of the ALT rise, and locks
    # BXP-001's casebook: verified, signed, complete.
    data_freeze(
        by=manager,
        visit=_visit(at_m6, "M1"),
        reason="Frozen while the sponsor reviews the ALT rise of M1",
    )
    data_lock(
        by=manager,
        patient=completed,
        reason="Casebook complete, source verified and signed: locked for the interim analysis",
    )
    return (
        f"review: {verified} form(s) verified, 7 queries raised by the monitor and "
        f"{len(automatic)} by the system, 3 signatures (one voided), a frozen visit, "
        "a locked casebook"
    )
