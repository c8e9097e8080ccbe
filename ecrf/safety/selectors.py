"""Reads of the safety screens: always through `visible_to`, with the clocks worked out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import django_filters
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrf.safety.clock import SusarClock, susar_clock
from ecrf.safety.models import AdverseEvent, LabAlert, SaeReport


class AdverseEventFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(
        queryset=None, label=_("Site"), to_field_name="code", field_name="patient__site"
    )
    grade = django_filters.ChoiceFilter(
        field_name="ctcae_grade",
        choices=[(g, str(g)) for g in range(1, 6)],
        label=_("Grade"),
    )
    serious = django_filters.ChoiceFilter(
        choices=[("yes", _("Serious")), ("no", _("Not serious"))],
        label=_("Seriousness"),
        method="filter_serious",
    )
    relatedness = django_filters.ChoiceFilter(
        choices=[
            ("related", _("Related (possible or stronger)")),
            *AdverseEvent.Relatedness.choices,
        ],
        label=_("Relatedness"),
        method="filter_relatedness",
    )

    class Meta:
        model = AdverseEvent
        fields = ["site", "grade", "serious", "relatedness"]

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the sites the user may see are offered; another site's code is an invalid choice.
        self.filters["site"].queryset = sites

    def filter_serious(self, queryset, name, value):
        return queryset.filter(serious=value == "yes")

    def filter_relatedness(self, queryset, name, value):
        if value == "related":
            return queryset.filter(
                Q(relatedness__in=AdverseEvent.RELATED)
                | Q(sponsor_relatedness__in=AdverseEvent.RELATED)
            )
        return queryset.filter(relatedness=value)


class SaeClockFilter(django_filters.FilterSet):
    """The SAE list's initial reports by their clock: still to submit, or past the deadline."""

    clock = django_filters.ChoiceFilter(
        choices=[
            ("pending", _("Not submitted yet")),
            ("late", _("Not submitted, past the deadline")),
        ],
        label=_("Initial report"),
        method="filter_clock",
    )

    class Meta:
        model = SaeReport
        fields = ["clock"]

    def filter_clock(self, queryset, name, value):
        queryset = queryset.filter(submitted_at__isnull=True)
        return queryset.filter(due_at__lt=timezone.now()) if value == "late" else queryset


def adverse_events_for(user, *, study):
    """The user's visible adverse events of a study, with what the lists show."""
    initial = SaeReport.objects.filter(adverse_event=OuterRef("pk"), number=0)
    return (
        AdverseEvent.objects.visible_to(user)
        .filter(patient__study=study)
        .select_related("patient__site")
        .annotate(
            initial_due_at=Subquery(initial.values("due_at")[:1]),
            initial_submitted_at=Subquery(initial.values("submitted_at")[:1]),
        )
    )


@dataclass
class SaeRow:
    """One serious adverse event on the SAE list, with its clocks at `now`."""

    report: SaeReport  # the initial report
    event: AdverseEvent
    follow_ups: int
    now: datetime

    @property
    def time_to_report(self) -> timedelta | None:
        if self.report.submitted_at is None:
            return None
        return self.report.submitted_at - self.report.aware_at

    @property
    def overdue(self) -> bool:
        """Late: submitted after the deadline, or still not submitted past it."""
        return (self.report.submitted_at or self.now) > self.report.due_at

    @property
    def time_left(self) -> timedelta | None:
        if self.report.submitted_at is not None:
            return None
        return self.report.due_at - self.now

    @property
    def late_by(self) -> timedelta:
        return (self.report.submitted_at or self.now) - self.report.due_at

    @property
    def susar(self) -> SusarClock | None:
        if not self.event.susar or self.report.acknowledged_at is None:
            return None
        return susar_clock(
            first_knowledge=self.report.acknowledged_at,
            fatal_or_life_threatening=self.event.fatal_or_life_threatening,
        )

    @property
    def susar_overdue(self) -> bool:
        clock = self.susar
        return clock is not None and clock.overdue(
            self.now, reported_at=self.event.authority_reported_at
        )


def sae_rows(reports, *, now: datetime | None = None) -> list[SaeRow]:
    now = now or timezone.now()
    return [
        SaeRow(report=r, event=r.adverse_event, follow_ups=r.follow_ups, now=now) for r in reports
    ]


def initial_reports_for(user, *, study):
    """The initial SAE reports the user may see (one per serious event), newest clock first."""
    follow_ups = (
        SaeReport.objects.filter(adverse_event=OuterRef("adverse_event"), number__gt=0)
        .order_by()
        .values("adverse_event")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        SaeReport.objects.visible_to(user)
        .filter(number=0, adverse_event__patient__study=study)
        .select_related("adverse_event__patient__site")
        .annotate(follow_ups=Coalesce(Subquery(follow_ups), Value(0)))
        .order_by("-due_at")
    )


def patient_log(user, *, patient):
    """A patient's adverse events with their SAE reports, and the open lab prompts."""
    events = (
        AdverseEvent.objects.visible_to(user)
        .filter(patient=patient)
        .prefetch_related(Prefetch("sae_reports", queryset=SaeReport.objects.order_by("number")))
        .order_by("number")
    )
    alerts = (
        LabAlert.objects.visible_to(user)
        .filter(patient=patient)
        .open()
        .select_related("visit")
        .order_by("created_at")
    )
    return events, alerts
