"""Reads across a patient's case report forms for the screens."""

from __future__ import annotations

from dataclasses import dataclass

from ecrf.crfs.models import Mrss
from ecrf.patients.models import Patient, Visit
from ecrf.scoring import mrss


@dataclass(frozen=True)
class MrssPoint:
    visit_code: str
    total: int
    change_pct: float | None
    x: float
    y: float


def mrss_series(patient: Patient, visits: list[Visit]) -> list[MrssPoint]:
    """mRSS totals in visit order, with the percent change from the inclusion visit (M0)."""
    totals = dict(
        Mrss.objects.filter(patient=patient, total__isnull=False).values_list("visit_id", "total")
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
