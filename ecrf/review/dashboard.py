"""The review dashboards: what stands at each site of a study, in a few figures.

The monitor's dashboard shows one site, the data manager's every site side by side; both
read the same functions, one per figure, each taking the study and the sites shown and
answering for all of them at once: a dict site id -> figure, in one query (grouped by
site), whatever the number of sites and patients. `study_dashboard` puts them together.

A figure a function returns as None is shown as "not tracked yet", never as a reassuring 0.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from ecrf.patients.models import Deviation, Patient, Visit
from ecrf.review.matrix import SdvProgress, sdv_progress
from ecrf.review.models import Query
from ecrf.review.queries import AGE_BUCKETS, age_bucket_filter, with_age
from ecrf.review.signatures import casebooks_awaiting_signature
from ecrf.safety.models import SaeReport

# The age buckets of queries not closed, in days open (ecrf/review/queries.py): the keys
# `_query_ageing` fills, and how the screens name them.
QUERY_AGE_BUCKETS = tuple(code for code, *_rest in AGE_BUCKETS)
QUERY_AGE_LABELS = {code: label for code, label, *_rest in AGE_BUCKETS}

# Visits are overdue only for patients still followed: a patient who ended has no more.
FOLLOWED = (Patient.Status.SCREENING, Patient.Status.ENROLLED)


def overdue_visits(visits, *, today: date | None = None):
    """The visits of a queryset that are overdue: still planned, undated, their window
    closed before today, for a patient still followed (screening or enrolled).

    The dashboards count them, the overdue list and the pre-lock checklist show them: one
    definition. Today is the installation's day (TIME_ZONE), as the pre-lock checklist's.
    """
    today = today or timezone.localdate()
    return visits.filter(
        patient__status__in=FOLLOWED,
        status=Visit.Status.PLANNED,
        visit_date__isnull=True,
        latest_date__lt=today,
    )


# -- one function per figure: (study, sites) -> {site id: figure} -------------------------------


def _site_ids(sites) -> list[int]:
    return [site.pk for site in sites]


def _patients(study, sites):
    return Patient.objects.filter(study=study, site__in=_site_ids(sites))


def _sdv(study, sites, *, versions) -> dict[int, SdvProgress]:
    """The forms the SDV plan requires, complete, and those verified (the matrix's
    backlog, `review.matrix.sdv_progress`)."""
    return sdv_progress(_patients(study, sites), versions=versions)


def _query_ageing(study, sites, *, now=None) -> dict[int, dict[str, int]]:
    """Queries not closed by days open: {site id: {"0-7": n, "8-14": n, "15-30": n,
    "over-30": n}}, one query grouped by site (a site without any left out)."""
    queries = Query.objects.filter(patient__study=study, patient__site__in=_site_ids(sites))
    rows = (
        with_age(queries.unresolved().order_by(), now=now)
        .values("patient__site_id")
        .annotate(
            **{code: Count("pk", filter=age_bucket_filter(code)) for code in QUERY_AGE_BUCKETS}
        )
    )
    return {row.pop("patient__site_id"): row for row in rows}


def _casebooks_awaiting_signature(study, sites) -> dict[int, int]:
    """Casebooks awaiting the investigator's signature (`review.signatures`): {site id:
    count}, one query grouped by site (a site without any left out)."""
    rows = (
        casebooks_awaiting_signature(study=study)
        .filter(site__in=_site_ids(sites))
        .order_by()
        .values("site_id")
        .annotate(n=Count("pk"))
    )
    return {row["site_id"]: row["n"] for row in rows}


def _overdue_visits(study, sites) -> dict[int, int]:
    rows = (
        overdue_visits(Visit.objects.filter(patient__study=study, patient__site__in=sites))
        .values("patient__site_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {row["patient__site_id"]: row["n"] for row in rows}


def _sae_clocks(study, sites, *, now=None) -> dict[int, tuple[int, int]]:
    """Initial SAE reports not submitted (pending), and of those the ones past the
    investigator's deadline (late): {site id: (pending, late)}. A follow-up exists only
    once sent, so only initial reports wait."""
    now = now or timezone.now()
    rows = (
        SaeReport.objects.filter(
            adverse_event__patient__study=study,
            adverse_event__patient__site__in=sites,
            number=0,
            submitted_at__isnull=True,
        )
        .values("adverse_event__patient__site_id")
        .annotate(pending=Count("pk"), late=Count("pk", filter=Q(due_at__lt=now)))
        .order_by()
    )
    return {row["adverse_event__patient__site_id"]: (row["pending"], row["late"]) for row in rows}


def _deviations(study, sites) -> dict[int, int]:
    """Protocol deviations that stand (a re-dated visit closes the one it no longer has)."""
    rows = (
        Deviation.objects.open()
        .filter(patient__study=study, patient__site__in=sites)
        .values("patient__site_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {row["patient__site_id"]: row["n"] for row in rows}


def _enrolment(study, sites) -> dict[int, dict[date | None, int]]:
    """Patients by site and month of inclusion (day 0): {site id: {month: n}}, the month
    None holding those never included (in screening, screen failed)."""
    rows = (
        _patients(study, sites)
        .values("site_id", month=TruncMonth("day0_date"))
        .annotate(n=Count("pk"))
        .order_by()
    )
    months: dict[int, dict[date | None, int]] = defaultdict(dict)
    for row in rows:
        months[row["site_id"]][row["month"]] = row["n"]
    return dict(months)


# -- the dashboard --------------------------------------------------------------------------------


@dataclass
class Figures:
    """What stands at a site (or, `site` None, at the sites shown together)."""

    site: object
    sdv: SdvProgress
    overdue_visits: int
    sae_pending: int
    sae_late: int
    deviations: int
    screened: int
    enrolled: int
    query_ageing: dict[str, int] | None
    awaiting_signature: int | None
    enrolment_months: dict[date, int] = field(default_factory=dict)

    @property
    def open_queries(self) -> int | None:
        return None if self.query_ageing is None else sum(self.query_ageing.values())

    @property
    def sdv_backlog(self) -> int:
        return self.sdv.backlog

    @property
    def enrolment_cumulated(self) -> list[tuple[date, int, int]]:
        """(month, included that month, included by its end), the months with inclusions."""
        rows, running = [], 0
        for month, n in self.enrolment_months.items():
            running += n
            rows.append((month, n, running))
        return rows


@dataclass
class Dashboard:
    study: object
    sites: list[Figures]
    total: Figures
    target: int | None  # the study's target enrolment

    @property
    def query_tracked(self) -> bool:
        return self.total.query_ageing is not None

    @property
    def enrolment_percent(self) -> int | None:
        if not self.target:
            return None
        return self.total.enrolled * 100 // self.target


def _sum_ageing(ageings: list[dict[str, int] | None]) -> dict[str, int] | None:
    if any(ageing is None for ageing in ageings):
        return None
    return {bucket: sum(a.get(bucket, 0) for a in ageings) for bucket in QUERY_AGE_BUCKETS}


def _summed(figures: list[Figures]) -> Figures:
    months: dict[date, int] = defaultdict(int)
    for one in figures:
        for month, n in one.enrolment_months.items():
            months[month] += n
    signatures = [one.awaiting_signature for one in figures]
    return Figures(
        site=None,
        sdv=SdvProgress(
            required=sum(one.sdv.required for one in figures),
            verified=sum(one.sdv.verified for one in figures),
        ),
        overdue_visits=sum(one.overdue_visits for one in figures),
        sae_pending=sum(one.sae_pending for one in figures),
        sae_late=sum(one.sae_late for one in figures),
        deviations=sum(one.deviations for one in figures),
        screened=sum(one.screened for one in figures),
        enrolled=sum(one.enrolled for one in figures),
        query_ageing=_sum_ageing([one.query_ageing for one in figures]) if figures else None,
        awaiting_signature=None
        if not figures or None in signatures
        else sum(n for n in signatures if n is not None),
        enrolment_months=dict(sorted(months.items())),
    )


def study_dashboard(study, sites, *, versions) -> Dashboard:
    """Every figure for these sites of the study (a monitor's one site, or all of them),
    and their sum: five queries whatever the number of sites and patients. `versions`:
    the study's protocol versions by id (the SDV plan of each patient's version)."""
    sites = list(sites)
    sdv = _sdv(study, sites, versions=versions)
    ageing = _query_ageing(study, sites)
    signatures = _casebooks_awaiting_signature(study, sites)
    overdue = _overdue_visits(study, sites)
    sae = _sae_clocks(study, sites)
    deviations = _deviations(study, sites)
    enrolment = _enrolment(study, sites)
    rows = []
    for site in sites:
        months = enrolment.get(site.pk, {})
        included = {month: n for month, n in months.items() if month is not None}
        pending, late = sae.get(site.pk, (0, 0))
        rows.append(
            Figures(
                site=site,
                sdv=sdv.get(site.pk, SdvProgress()),
                overdue_visits=overdue.get(site.pk, 0),
                sae_pending=pending,
                sae_late=late,
                deviations=deviations.get(site.pk, 0),
                screened=sum(months.values()),
                enrolled=sum(included.values()),
                query_ageing=None
                if ageing is None
                else {b: ageing.get(site.pk, {}).get(b, 0) for b in QUERY_AGE_BUCKETS},
                awaiting_signature=None if signatures is None else signatures.get(site.pk, 0),
                enrolment_months=dict(sorted(included.items())),
            )
        )
    return Dashboard(study=study, sites=rows, total=_summed(rows), target=study.target_enrolment)
