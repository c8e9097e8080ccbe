"""Queries (discrepancy notes): raised on a field, a whole form or a visit, answered by the
site, closed by the reviewer.

A monitor or data manager raises a query (`query_raise`); the site's investigator or
coordinator answers it with an explanation (`query_answer`) or by correcting the value
(`query_correct`: the form's own save service, `crf_save` or `ae_update`, with
"Query #12: ..." as the reason for change, and the thread's message names the version
it produced); the reviewer closes it (`query_close`) or reopens it (`query_reopen`).
The moves are `ecrf.review.states.QUERY_TRANSITIONS`; the system's own queries come from
`ecrf.review.auto_queries`.

A thread is never edited nor deleted: each act adds a `QueryMessage` (the database
refuses an update or a delete), and the query row only moves its status. A freeze lets
queries go on (a correction is a change of data, so the freeze refuses it, through the
save service); a lock stops them.

Readers for the screens: `query_ageing` (the buckets of days open) and the counts per
patient, visit and form (`open_queries_by_patient`, `open_queries_by_visit`,
`open_queries_by_entry`, `open_query_counts`), one query each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Prefetch, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ecrf.accounts.permissions import Action, can, require
from ecrf.audit.context import audit_reason, audit_user_id, audited
from ecrf.core.reasons import reason_problem
from ecrf.crfs.services import crf_save, is_repeatable
from ecrf.patients.locks import require_unlocked
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.review.models import Query, QueryMessage
from ecrf.review.plan import AE_CODE, SAE_CODE
from ecrf.review.sdv import WHOLE, entry_label, field_label, sdv_fields
from ecrf.review.states import QueryStatus, query_transition_allowed
from ecrf.safety.models import AdverseEvent
from ecrf.safety.rules import AE_FIELDS
from ecrf.safety.services import ae_update

# -- ageing ------------------------------------------------------------------------------------

# (code, label, first day, last day): days open, counted from the raise to the close (or now).
AGE_BUCKETS: tuple[tuple[str, object, int, int | None], ...] = (
    ("0-7", gettext_lazy("0–7 days"), 0, 7),
    ("8-14", gettext_lazy("8–14 days"), 8, 14),
    ("15-30", gettext_lazy("15–30 days"), 15, 30),
    ("over-30", gettext_lazy("over 30 days"), 31, None),
)


def with_age(queries, *, now: datetime | None = None):
    """The queries annotated with `age`: how long each has been open (to its close, for a
    closed one)."""
    now = now or timezone.now()
    return queries.annotate(
        age=ExpressionWrapper(
            Coalesce(F("closed_at"), Value(now)) - F("opened_at"), output_field=DurationField()
        )
    )


def age_bucket_filter(code: str) -> Q:
    """The condition on `age` (see `with_age`) for one bucket of AGE_BUCKETS."""
    for bucket, _label, first, last in AGE_BUCKETS:
        if bucket == code:
            where = Q(age__gte=timedelta(days=first))
            if last is not None:
                where &= Q(age__lt=timedelta(days=last + 1))
            return where
    raise KeyError(code)


def query_ageing(queries, *, now: datetime | None = None) -> dict[str, int]:
    """How many of these queries fall in each bucket of days open: {"0-7": 3, "8-14": 0,
    "15-30": 1, "over-30": 2}, in AGE_BUCKETS' order, in one query.

    Give it the queries to count (for the dashboards, usually
    `Query.objects.visible_to(user).filter(patient__study=study).unresolved()`); a closed
    query counts by the days it stayed open.
    """
    counted = with_age(queries.order_by(), now=now).aggregate(
        **{
            code: Count("pk", filter=age_bucket_filter(code))
            for code, _label, _first, _last in AGE_BUCKETS
        }
    )
    return {code: counted[code] for code, *_rest in AGE_BUCKETS}


def days_open(query: Query, *, now: datetime | None = None) -> int:
    end = query.closed_at or now or timezone.now()
    return (end - query.opened_at).days


# -- counts for the screens --------------------------------------------------------------------


def open_queries_by_patient(patients: Iterable) -> dict[int, int]:
    """{patient id: queries not closed}, for a page of patients (ids or rows): one query."""
    ids = [getattr(p, "pk", p) for p in patients]
    rows = (
        Query.objects.unresolved()
        .filter(patient_id__in=ids)
        .order_by()
        .values("patient_id")
        .annotate(n=Count("pk"))
    )
    return {row["patient_id"]: row["n"] for row in rows}


def open_queries_by_visit(patients: Iterable) -> dict[tuple[int, int | None], int]:
    """{(patient id, visit id): queries not closed}; visit None: the patient's log (adverse
    events, SAE reports). One query."""
    ids = [getattr(p, "pk", p) for p in patients]
    rows = (
        Query.objects.unresolved()
        .filter(patient_id__in=ids)
        .order_by()
        .values("patient_id", "visit_id")
        .annotate(n=Count("pk"))
    )
    return {(row["patient_id"], row["visit_id"]): row["n"] for row in rows}


def open_queries_by_entry(entries: Iterable) -> dict[int, int]:
    """{form index entry id: queries not closed}: one query."""
    ids = [getattr(e, "pk", e) for e in entries]
    rows = (
        Query.objects.unresolved()
        .filter(entry_id__in=ids)
        .order_by()
        .values("entry_id")
        .annotate(n=Count("pk"))
    )
    return {row["entry_id"]: row["n"] for row in rows}


def open_query_counts(*, study, site=None) -> dict[int, int]:
    """{patient id: queries not closed} for a study, or one of its sites: one query. The
    caller scopes what it shows (the counts say nothing but numbers per patient id)."""
    queries = Query.objects.unresolved().filter(patient__study=study)
    if site is not None:
        queries = queries.filter(patient__site=site)
    rows = queries.order_by().values("patient_id").annotate(n=Count("pk"))
    return {row["patient_id"]: row["n"] for row in rows}


@dataclass(frozen=True)
class Thread:
    """A query and its messages as a form's page shows them."""

    query: Query
    field_label: str
    messages: list[tuple[QueryMessage, str]]  # (message, who)

    @property
    def open(self) -> bool:
        return self.query.status != QueryStatus.CLOSED


def entry_threads(entry: FormIndexEntry, *, closed: bool = True) -> list[Thread]:
    """The queries of a form instance with their threads, oldest first: two queries.
    Without `closed`, only those not closed (the form page marks their fields)."""
    return _threads(Query.objects.filter(entry_id=entry.pk), entry.form_code, closed=closed)


def instance_threads(instance, *, closed: bool = True) -> list[Thread]:
    """The same for an indexed instance (a CRF, an adverse event), found through its
    entry in the same queries."""
    code = instance.index_code()
    queries = Query.objects.filter(entry__form_code=code, entry__object_id=instance.pk)
    return _threads(queries, code, closed=closed)


def _threads(queries, form_code: str, *, closed: bool) -> list[Thread]:
    queries = queries.order_by("pk")
    if not closed:
        queries = queries.unresolved()
    queries = list(
        queries.prefetch_related(
            Prefetch(
                "messages",
                queryset=QueryMessage.objects.select_related("by").order_by("pk"),
            )
        )
    )
    return [
        Thread(
            query=query,
            field_label=str(field_label(form_code, query.field)),
            messages=[(m, _who(m.by)) for m in query.messages.all()],
        )
        for query in queries
    ]


def _who(user) -> str:
    if user is None:
        return _("the system")
    return user.get_full_name() or user.get_username()


# -- what a query is about ---------------------------------------------------------------------


def query_target(query: Query) -> str:
    """ "Field LVEF of Echocardiography, visit M3", "Visit M6": for the lists and messages.
    Reads the entry, the visit and the patient's protocol (select them with the query)."""
    patient = query.patient
    visit = query.visit
    where = ""
    if visit is not None:
        where = f"{visit.code} #{visit.repeat}" if visit.repeat > 1 else visit.code
    if query.entry_id is None:
        return _("Visit %s") % where
    form = entry_label(patient, query.entry)
    if query.field:
        what = _("%(field)s of %(form)s") % {
            "field": field_label(query.entry.form_code, query.field),
            "form": form,
        }
    else:
        what = form
    return f"{what} · {where}" if where else what


def query_label(query: Query) -> str:
    return _("Query #%d") % query.pk


# -- the services ------------------------------------------------------------------------------


def _text(text: str, *, label) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": _("%(field)s: write the message.") % {"field": label}})
    if problem := reason_problem(text, label=label):
        raise ValidationError({"text": problem})
    return text


def _locked_query(query: Query) -> Query:
    return (
        Query.objects.select_for_update(of=("self",))
        .select_related("patient__protocol_version", "entry", "visit")
        .get(pk=query.pk)
    )


def _refuse_move(query: Query, target: str) -> None:
    """Refuse a move the table does not have, saying what the query's status allows."""
    if query_transition_allowed(query.status, target):
        return
    label = query_label(query)
    if query.status == QueryStatus.CLOSED:
        message = _("%(query)s is closed: nothing more can be added. Raise a new query.")
    elif target == QueryStatus.ANSWERED:
        message = _(
            "%(query)s is already answered: the monitor reads the answer, and reopens the "
            "query if more is needed."
        )
    elif target == QueryStatus.REOPENED:
        message = _("%(query)s is not answered yet: only an answered query is reopened.")
    else:
        message = _("%(query)s cannot move from %(status)s to %(target)s.")
    raise ValidationError(
        message
        % {
            "query": label,
            "status": QueryStatus(query.status).label,
            "target": QueryStatus(target).label,
        },
        code="status",
    )


def _unlocked(query: Query) -> None:
    require_unlocked(patient=query.patient, visit=query.visit, entry=query.entry, review=True)


def _move(query: Query, *, kind: str, target: str, by, text: str, now, version=None) -> None:
    QueryMessage.objects.create(
        query=query,
        patient_id=query.patient_id,
        kind=kind,
        text=text,
        by=by,
        at=now,
        version=version,
    )
    query.status = target
    update = ["status"]
    if target == QueryStatus.CLOSED:
        query.closed_at = now
        update.append("closed_at")
    query.save(update_fields=update)


def query_create(
    *,
    patient: Patient,
    entry: FormIndexEntry | None,
    visit: Visit | None,
    field: str,
    text: str,
    by,
    rule: str = "",
    now=None,
) -> Query:
    """Write a query and its first message (inside the caller's transaction and audit
    context, checks done): `query_raise` for a reviewer, the automatic rules for the
    system."""
    now = now or timezone.now()
    query = Query.objects.create(
        patient=patient,
        entry=entry,
        visit_id=entry.visit_id if entry is not None else visit.pk,
        field=field,
        origin=Query.Origin.AUTO if rule else Query.Origin.MANUAL,
        rule=rule,
        raised_by=by,
        opened_at=now,
    )
    QueryMessage.objects.create(
        query=query, patient=patient, kind=QueryMessage.Kind.RAISE, text=text, by=by, at=now
    )
    return query


def query_raise(*, by, entry: FormIndexEntry, field: str = WHOLE, text: str) -> Query:
    """Raise a query on a field of a form instance (`field` "" for the whole form)."""
    patient = entry.patient
    require(by, Action.RAISE_QUERY, patient=patient)
    text = _text(text, label=_("Query"))
    with transaction.atomic():
        entry = (
            FormIndexEntry.objects.select_for_update(of=("self",))
            .select_related("patient__protocol_version", "visit")
            .get(pk=entry.pk)
        )
        if field != WHOLE and field not in sdv_fields(entry.form_code):
            raise ValidationError(
                {
                    "field": _("%(field)s is not a field of %(form)s.")
                    % {"field": field, "form": entry_label(entry.patient, entry)}
                }
            )
        # A freeze lets the review go on; a lock stops it.
        require_unlocked(patient=entry.patient, visit=entry.visit, entry=entry, review=True)
        with audited(by=by, reason="query raised"):
            return query_create(
                patient=entry.patient, entry=entry, visit=None, field=field, text=text, by=by
            )


def _reply(*, by, query: Query, text: str, label, kind, target, said: str) -> Query:
    """A message that moves the query along the table: the site's answer, the reviewer's
    close or reopening (the caller has asked the table; atomic, audited as "query <said>:
    #N")."""
    text = _text(text, label=label)
    with transaction.atomic():
        query = _locked_query(query)
        _refuse_move(query, target)
        _unlocked(query)
        with audited(by=by, reason=f"query {said}: #{query.pk}"):
            _move(query, kind=kind, target=target, by=by, text=text, now=timezone.now())
    return query


def query_answer(*, by, query: Query, text: str) -> Query:
    """The site answers with an explanation: the query waits for the reviewer."""
    require(by, Action.ANSWER_QUERY, patient=query.patient)
    return _reply(
        by=by,
        query=query,
        text=text,
        label=_("Answer"),
        kind=QueryMessage.Kind.ANSWER,
        target=QueryStatus.ANSWERED,
        said="answered",
    )


def correction_reason(query: Query, text: str) -> str:
    """The reason for change the corrected form's audit trail keeps: "Query #12: ..."."""
    return f"Query #{query.pk}: {text}"


# A reason for change that names a query (correction_reason's form, as the form page's
# "Correct on this form" prefills it), and the query query_correct is answering itself.
QUERY_REASON = re.compile(r"^Query #(\d+):")
_answering: ContextVar[int | None] = ContextVar("review_query_answering", default=None)


def query_answered_by_save(entry: FormIndexEntry) -> Query | None:
    """A form saved with a reason for change that names one of its queries ("Query #12:
    ...", typed or prefilled on the form's own page) answers that query with the
    correction, in the save's transaction and audit context: the thread's message names
    the version, the version's audit event names the query. Nothing when the query is
    not this form's, is closed or already answered, or the saver may not answer it."""
    match = QUERY_REASON.match(audit_reason())
    user_id = audit_user_id()
    if match is None or user_id is None or _answering.get() is not None:
        return None
    query = (
        Query.objects.select_for_update(of=("self",))
        .select_related("patient")
        .filter(pk=int(match[1]), entry_id=entry.pk)
        .first()
    )
    if query is None or not query_transition_allowed(query.status, QueryStatus.ANSWERED):
        return None
    by = get_user_model().objects.get(pk=user_id)
    if not can(by, Action.ANSWER_QUERY, patient=query.patient):
        return None
    _move(
        query,
        kind=QueryMessage.Kind.CORRECTION,
        target=QueryStatus.ANSWERED,
        by=by,
        text=_("Corrected on the form (version %d).") % entry.version,
        now=timezone.now(),
        version=entry.version,
    )
    return query


def query_correct(
    *,
    by,
    query: Query,
    values: dict,
    expected_version: int,
    text: str = "",
    confirmed: frozenset[str] = frozenset(),
) -> Query:
    """The site corrects the value: the form's save service writes the new version with
    the query as its reason for change, and the thread's message names that version.

    `values` are the fields to change (the form's others stay as they are);
    `expected_version` the version the page showed. What the save service refuses
    (a frozen form, a stale version, a value out of range, `WarningsPending`) is raised
    as it is, and nothing is saved.
    """
    require(by, Action.ANSWER_QUERY, patient=query.patient)
    text = (text or "").strip()
    if text:
        text = _text(text, label=_("Answer"))
    if not values:
        raise ValidationError({"values": _("Give the corrected value.")})
    with transaction.atomic():
        query = _locked_query(query)
        _refuse_move(query, QueryStatus.ANSWERED)
        entry = query.entry
        if entry is None:
            raise ValidationError(
                _("%s is about a visit, not a form: answer it with an explanation.")
                % query_label(query)
            )
        _unlocked(query)
        question = query.messages.filter(kind=QueryMessage.Kind.RAISE).values_list(
            "text", flat=True
        )[0]
        reason = correction_reason(query, text or question)
        answering = _answering.set(query.pk)  # this service writes the thread's message
        try:
            saved = _save_correction(
                entry,
                by=by,
                values=values,
                expected_version=expected_version,
                reason=reason,
                confirmed=confirmed,
            )
        finally:
            _answering.reset(answering)
        if saved.version == expected_version:
            raise ValidationError(
                {
                    "values": _(
                        "These are the values already saved: nothing was corrected. Answer "
                        "with an explanation if the data are right."
                    )
                }
            )
        fields = ", ".join(str(field_label(entry.form_code, name)) for name in sorted(values))
        message = text or _("Corrected: %s.") % fields
        with audited(by=by, reason=reason):
            _move(
                query,
                kind=QueryMessage.Kind.CORRECTION,
                target=QueryStatus.ANSWERED,
                by=by,
                text=message,
                now=timezone.now(),
                version=saved.version,
            )
    return query


def _save_correction(entry, *, by, values, expected_version, reason, confirmed):
    """Through the form's own save service: a CRF's crf_save, an adverse event's
    ae_update. An SAE report is never changed once sent (news is a follow-up report)."""
    if entry.form_code == SAE_CODE:
        raise ValidationError(
            _(
                "An SAE report is not changed once sent: answer with an explanation, and send "
                "a follow-up report if the facts changed."
            )
        )
    if entry.form_code == AE_CODE:
        event = AdverseEvent.objects.select_related("patient").get(pk=entry.object_id)
        current = {name: getattr(event, name) for name in AE_FIELDS}
        return ae_update(
            event=event,
            by=by,
            values=current | dict(values),
            expected_version=expected_version,
            reason=reason,
        )
    if entry.visit is None:  # pragma: no cover - every CRF is at a visit
        raise ValidationError(_("This form is at no visit."))
    return crf_save(
        visit=entry.visit,
        form_code=entry.form_code,
        values=dict(values),
        by=by,
        expected_version=expected_version,
        reason=reason,
        confirmed=confirmed,
        # A repeatable form's instance is named by its id; another form is the visit's one.
        instance_id=entry.object_id if is_repeatable(entry.visit, entry.form_code) else None,
    )


def query_close(*, by, query: Query, text: str) -> Query:
    """The reviewer closes the query: the answer settles it (or it was raised in error)."""
    require(by, Action.CLOSE_QUERY, patient=query.patient)
    return _reply(
        by=by,
        query=query,
        text=text,
        label=_("Closing note"),
        kind=QueryMessage.Kind.CLOSE,
        target=QueryStatus.CLOSED,
        said="closed",
    )


def query_reopen(*, by, query: Query, text: str) -> Query:
    """The reviewer reopens an answered query: the answer does not settle it."""
    require(by, Action.CLOSE_QUERY, patient=query.patient)
    return _reply(
        by=by,
        query=query,
        text=text,
        label=_("Reason for reopening"),
        kind=QueryMessage.Kind.REOPEN,
        target=QueryStatus.REOPENED,
        said="reopened",
    )
