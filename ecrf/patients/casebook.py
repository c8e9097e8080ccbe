"""The casebook of one patient: visits × forms, with the windows and statuses of the visits."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.patients.visits import conditions_met, patient_visit_forms


@dataclass(frozen=True)
class Cell:
    applies: bool
    status: str | None  # not_started / in_progress / complete, None when not applicable


def visit_timing(visit: Visit, today) -> tuple[int | None, int | None]:
    """(days left in the window, days since the visit with its data entry pending).

    Overdue is about the visit, not the typing: an undated visit past its window is
    overdue; a visit that took place with forms still to enter is pending data entry,
    counted from its date (M0, window 0/0, dated yesterday is not "1 day overdue").
    """
    if visit.status == Visit.Status.PLANNED and visit.latest_date:
        return (visit.latest_date - today).days, None
    if visit.status == Visit.Status.IN_PROGRESS and visit.visit_date:
        return None, (today - visit.visit_date).days
    return None, None


@dataclass(frozen=True)
class Column:
    visit: Visit
    days_left: int | None  # undated visit: days until its window closes; negative when overdue
    entry_pending_days: int | None = None  # dated visit, forms pending: days since its date

    @property
    def overdue(self) -> bool:
        return self.days_left is not None and self.days_left < 0

    @property
    def days_overdue(self) -> int:
        return -self.days_left if self.overdue else 0


def casebook(patient: Patient) -> dict:
    """Everything the casebook page shows, in a constant number of queries."""
    protocol = patient.protocol_version.protocol
    visits = list(patient.visits.order_by("sequence", "repeat"))
    for visit in visits:  # the protocol's name, in the request's language, under the code
        visit.name = protocol.visit(visit.code).name
    conditions = conditions_met(patient)
    per_visit = {
        v.pk: {f.form for f in patient_visit_forms(patient, v.code, conditions)} for v in visits
    }
    used = set().union(*per_visit.values())
    form_codes = [spec.code for spec in protocol.forms if spec.code in used]
    # One query for every form of every visit, from the form index: the page's cost does
    # not grow with the visits or the form types. A repeatable form shows its latest
    # instance's status.
    entries = FormIndexEntry.objects.filter(patient=patient, visit__isnull=False)
    instances = {
        (visit_id, code): status
        for visit_id, code, status in entries.order_by("object_id").values_list(
            "visit_id", "form_code", "status"
        )
    }
    today = timezone.localdate()
    columns = [Column(visit, *visit_timing(visit, today)) for visit in visits]
    labels = {f.code: f.label for f in protocol.forms}
    matrix = [
        (
            labels[code],
            [
                Cell(
                    applies=code in per_visit[v.pk],
                    status=instances.get((v.pk, code), "not_started")
                    if code in per_visit[v.pk]
                    else None,
                )
                for v in visits
            ],
        )
        for code in form_codes
    ]
    return {
        "columns": columns,
        "matrix": matrix,
        "today": today,
    }
