"""The casebook of one patient: visits × forms, deviations, and the mRSS over time."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from ecrf.patients.models import Patient, Visit
from ecrf.patients.visits import conditions_met, patient_visit_forms
from ecrf.scoring import mrss


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


@dataclass(frozen=True)
class MrssPoint:
    visit_code: str
    total: int
    change_pct: float | None
    x: float
    y: float


def casebook(patient: Patient) -> dict:
    """Everything the casebook page shows, in a constant number of queries."""
    from ecrf.crfs.models import form_model

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
    instances = {}
    # One query per form of the protocol, however many visits: the page's cost is fixed.
    for code in (spec.code for spec in protocol.forms if not spec.per_patient):
        for row in form_model(code).objects.filter(patient=patient).values("visit_id", "status"):
            instances[(row["visit_id"], code)] = row["status"]
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
        "mrss": mrss_series(patient, visits),
        "today": today,
    }


def mrss_series(patient: Patient, visits: list[Visit]) -> list[MrssPoint]:
    """mRSS totals in visit order, with the percent change from the inclusion visit (M0)."""
    from ecrf.crfs.models import form_model

    totals = dict(
        form_model("mrss")
        .objects.filter(patient=patient, total__isnull=False)
        .values_list("visit_id", "total")
    )
    day0_code = patient.protocol_version.protocol.day0_visit.code
    day0_sequence = next((v.sequence for v in visits if v.code == day0_code), None)
    # (code, total, counts from baseline): visits before inclusion have no change to show.
    points = [
        (v.code, totals[v.pk], day0_sequence is not None and v.sequence >= day0_sequence)
        for v in visits
        if v.pk in totals
    ]
    if not points:
        return []
    baseline = next((total for code, total, _ in points if code == day0_code), None)
    width = max(len(points) - 1, 1)
    return [
        MrssPoint(
            visit_code=code,
            total=total,
            change_pct=mrss.percent_change(baseline, total) if after_baseline else None,
            x=40 + 400 * i / width,
            y=170 - 150 * total / 51,
        )
        for i, (code, total, after_baseline) in enumerate(points)
    ]
