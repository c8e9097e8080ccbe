"""The queries the system raises itself: the one module of their rules [D].

Three rules, each a pure function deciding from what a row says, and one sweep that reads
the candidates in bulk and raises what the rules decide:

- ``warning:<code>``: a soft warning the investigator confirmed at save (the mRSS falling
  by more than 50 %, an LVEF under 30 %), on the form (the field the warning is about
  when there is one): the monitor checks it against the source;
- ``visit_overdue``: a visit past its window with its forms still empty (planned and
  undated, or dated with nothing entered), on the visit;
- ``sae_overdue``: a serious adverse event whose initial SAE report is past its deadline
  and not submitted, on the adverse event (not on the pending report, which goes away if
  the event is downgraded).

The sweep runs from Celery beat (`ecrf.review.tasks.raise_automatic_queries`) and from
`manage.py raise_automatic_queries`; it is idempotent: a unique constraint holds one query
per rule and target, so a rule raises its query once, however often the sweep runs, and
not again after the query is closed. A confirmed warning is read on the instance
(`confirmed_warnings`, written by crf_save) rather than caught on save: a sweep also
finds what was saved while the review app was not listening (imports, a failed task).
Locked data are skipped (a lock stops queries); frozen data still get them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.audit.context import audited
from ecrf.crfs.base import CrfBase
from ecrf.patients.form_index import indexed_models
from ecrf.patients.locks import data_lock_refusal
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.review.models import Query
from ecrf.review.plan import AE_CODE
from ecrf.review.queries import query_create
from ecrf.safety.models import SaeReport

WARNING_RULE = "warning:%s"
VISIT_OVERDUE = "visit_overdue"
SAE_OVERDUE = "sae_overdue"

# The field a soft warning is about, when it is one field (else the whole form).
WARNING_FIELDS = {"lvef_low": "lvef_pct"}

# Only these patients' visits are still expected.
ACTIVE = (Patient.Status.SCREENING, Patient.Status.ENROLLED)


@dataclass(frozen=True)
class Raise:
    """A query a rule decided to raise."""

    rule: str
    patient_id: int
    entry: FormIndexEntry | None
    visit_id: int | None
    field: str
    text: str

    @property
    def key(self) -> tuple:
        return (self.rule, self.entry.pk if self.entry else None, self.visit_id, self.field)


# -- the rules: pure functions -----------------------------------------------------------------


def warning_queries(confirmed: list[dict]) -> list[tuple[str, str, str]]:
    """(rule, field, text) for each soft warning confirmed at save."""
    return [
        (
            WARNING_RULE % warning["code"],
            WARNING_FIELDS.get(warning["code"], ""),
            _("Confirmed at save: %(message)s Please check it against the source document.")
            % {"message": warning["message"]},
        )
        for warning in confirmed
        if warning.get("code")
    ]


def visit_overdue(*, status: str, latest_date: date | None, today: date, entered: bool) -> bool:
    """A visit past the last day of its window with nothing entered."""
    if latest_date is None or latest_date >= today or entered:
        return False
    return status in (Visit.Status.PLANNED, Visit.Status.IN_PROGRESS)


def sae_overdue(*, due_at: datetime, submitted_at: datetime | None, now: datetime) -> bool:
    """An initial SAE report not submitted by its deadline."""
    return submitted_at is None and due_at < now


# -- the candidates ----------------------------------------------------------------------------


def _warning_candidates() -> list[Raise]:
    found = []
    for model in indexed_models():
        # Only the forms that have soft warnings can have confirmed one.
        if not issubclass(model, CrfBase) or model.soft_warnings is CrfBase.soft_warnings:
            continue
        rows = model.objects.exclude(confirmed_warnings=[]).values_list("pk", "confirmed_warnings")
        warned = dict(rows)
        if not warned:
            continue
        for entry in FormIndexEntry.objects.filter(
            form_code=model.index_code(), object_id__in=list(warned)
        ):
            for rule, field, text in warning_queries(warned[entry.object_id]):
                found.append(Raise(rule, entry.patient_id, entry, entry.visit_id, field, text))
    return found


def _visit_candidates(at: datetime) -> list[Raise]:
    entered = FormIndexEntry.objects.filter(visit=OuterRef("pk")).exclude(
        status=FormIndexEntry.Status.NOT_STARTED
    )
    visits = (
        Visit.objects.filter(
            status__in=[Visit.Status.PLANNED, Visit.Status.IN_PROGRESS],
            latest_date__isnull=False,
            latest_date__lt=at.date(),  # a first cut: the site's day is checked below
            patient__status__in=ACTIVE,
        )
        .annotate(entered=Exists(entered))
        .select_related("patient__site")
    )
    found = []
    for visit in visits:
        today = timezone.localtime(at, ZoneInfo(visit.patient.site.timezone)).date()
        if visit_overdue(
            status=visit.status, latest_date=visit.latest_date, today=today, entered=visit.entered
        ):
            text = _(
                "Visit %(visit)s is past its window (last day %(day)s) and nothing is entered: "
                "enter its data, or record the visit as missed."
            ) % {"visit": visit.code, "day": visit.latest_date.isoformat()}
            found.append(Raise(VISIT_OVERDUE, visit.patient_id, None, visit.pk, "", text))
    return found


def _sae_candidates(at: datetime) -> list[Raise]:
    reports = list(
        SaeReport.objects.filter(number=0, submitted_at__isnull=True, due_at__lt=at)
        .select_related("adverse_event")
        .order_by("pk")
    )
    events = {
        entry.object_id: entry
        for entry in FormIndexEntry.objects.filter(
            form_code=AE_CODE, object_id__in=[r.adverse_event_id for r in reports]
        )
    }
    found = []
    for report in reports:
        entry = events.get(report.adverse_event_id)
        if entry is None or not sae_overdue(
            due_at=report.due_at, submitted_at=report.submitted_at, now=at
        ):
            continue
        text = _(
            "The initial SAE report of %(event)s was due on %(due)s and is not submitted: "
            "submit it now, or say why."
        ) % {
            "event": report.adverse_event.label,
            "due": timezone.localtime(report.due_at).strftime("%Y-%m-%d %H:%M"),
        }
        found.append(Raise(SAE_OVERDUE, entry.patient_id, entry, None, "", text))
    return found


# -- the sweep ---------------------------------------------------------------------------------


def queries_raise_automatic(*, at: datetime | None = None) -> list[Query]:
    """Raise the queries the rules decide at `at` (now by default) and that are not raised
    yet; returns those raised. Safe to run twice, and concurrently: the second finds them
    raised (or meets the unique constraint, and skips)."""
    at = at or timezone.now()
    candidates = [*_warning_candidates(), *_visit_candidates(at), *_sae_candidates(at)]
    if not candidates:
        return []
    existing = set(
        Query.objects.filter(
            origin=Query.Origin.AUTO, rule__in={c.rule for c in candidates}
        ).values_list("rule", "entry_id", "visit_id", "field")
    )
    patients = {
        p.pk: p
        for p in Patient.objects.filter(
            pk__in={c.patient_id for c in candidates if c.key not in existing}
        )
    }
    visits = {
        v.pk: v
        for v in Visit.objects.filter(
            pk__in={c.visit_id for c in candidates if c.visit_id and c.key not in existing}
        )
    }
    raised = []
    for candidate in candidates:
        if candidate.key in existing:
            continue
        existing.add(candidate.key)
        patient = patients[candidate.patient_id]
        visit = visits.get(candidate.visit_id) if candidate.entry is None else None
        if data_lock_refusal(
            patient=patient,
            visit=visit or (candidate.entry.visit if candidate.entry else None),
            entry=candidate.entry,
            review=True,
        ):
            continue  # a lock stops queries, the system's too
        try:
            with (
                transaction.atomic(),
                audited(by=None, reason=f"automatic query: {candidate.rule}"),
            ):
                raised.append(
                    query_create(
                        patient=patient,
                        entry=candidate.entry,
                        visit=visit,
                        field=candidate.field,
                        text=candidate.text,
                        by=None,
                        rule=candidate.rule,
                        now=at,
                    )
                )
        except IntegrityError:
            continue  # raised meanwhile by another sweep
    return raised
