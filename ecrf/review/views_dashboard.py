"""Review dashboards (a monitor's site, a data manager's study) and the lists behind them.

A dashboard is a review screen: it is for monitors and data managers (Action.SDV), like
the SDV matrix; site staff are refused (403) and another site is not found (404). The
study's dashboard puts every site side by side, so it needs the role at every site, as
the database lock does. The lists behind the figures (overdue visits, protocol
deviations) read through `visible_to`, like every list: site staff may open them too.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrf.accounts.access import scope, study_sites_visible_to
from ecrf.accounts.permissions import Action, can, roles_allowed
from ecrf.core.pagination import paginate
from ecrf.patients.models import Deviation, Visit
from ecrf.patients.selectors import study_for
from ecrf.review.charts import bar_chart, enrolment_chart, progress_bars
from ecrf.review.dashboard import (
    QUERY_AGE_BUCKETS,
    QUERY_AGE_LABELS,
    overdue_visits,
    study_dashboard,
)
from ecrf.review.filters import DeviationFilter, OverdueVisitFilter
from ecrf.studies.models import Site

LIST_PAGE_SIZE = 50


def _versions(study) -> dict:
    return {version.pk: version for version in study.protocol_versions.all()}


def _visible_sites(user, study):
    return Site.objects.filter(
        study_sites__in=study_sites_visible_to(user).filter(study=study)
    ).order_by("code")


def _reviewed_sites(user, study):
    """The study's sites where the user reviews (monitors, data managers)."""
    return (
        Site.objects.filter(
            scope(user).site_filter("study_sites__study_id", "id", roles=roles_allowed(Action.SDV)),
            study_sites__study=study,
        )
        .distinct()
        .order_by("code")
    )


def _links(study, site=None) -> dict[str, str]:
    """Where each figure leads: the list behind it, for the site (or every site)."""
    where = f"site={site.code}" if site is not None else ""

    def url(name: str, *extra: str) -> str:
        query = "&".join(part for part in (where, *extra) if part)
        return reverse(name, args=[study.code]) + (f"?{query}" if query else "")

    return {
        "sdv": url("review:matrix"),
        "overdue": url("review:overdue_visits"),
        "sae": url("safety:sae_list", "clock=pending"),
        "sae_late": url("safety:sae_list", "clock=late"),
        "deviations": url("review:deviations", "state=open"),
        "patients": url("patients:list"),
        "queries": url("review:queries"),
        "signatures": url("review:signatures"),
        **{f"queries_{code}": url("review:queries", f"age={code}") for code in QUERY_AGE_BUCKETS},
    }


def _charts(*, figures, progress_rows, target) -> dict:
    ageing = figures.query_ageing
    return {
        "ageing": bar_chart(
            [(str(QUERY_AGE_LABELS[bucket]), ageing[bucket]) for bucket in QUERY_AGE_BUCKETS]
            if ageing and any(ageing.values())
            else None,
            label=_("Open queries by age, in days"),
            empty=_("No query is open."),
        ),
        "sdv": progress_bars(
            progress_rows,
            label=_("Source data verification: forms verified of those the plan requires"),
            empty=_("No form the SDV plan requires is complete yet."),
        ),
        "enrolment": enrolment_chart(
            figures.enrolment_months,
            target=target,
            today=timezone.localdate(),
            label=_("Patients included, cumulated by month"),
            empty=_("No patient included yet."),
        ),
    }


@login_required
def site_dashboard(request, study_code: str, site_code: str):
    """A monitor's site: SDV backlog, open queries by age, overdue visits, SAE reports
    pending or late, standing deviations, casebooks awaiting signature, enrolment."""
    study = study_for(request.user, study_code)
    site = get_object_or_404(_visible_sites(request.user, study), code=site_code)
    if not can(request.user, Action.SDV, study=study, site=site):
        raise PermissionDenied(_("The review dashboards are for monitors and data managers."))
    dashboard = study_dashboard(study, [site], versions=_versions(study))
    figures = dashboard.sites[0]
    return render(
        request,
        "review/dashboard_site.html",
        {
            "study": study,
            "site": site,
            "dashboard": dashboard,
            "figures": figures,
            "buckets": QUERY_AGE_LABELS.values(),
            "links": _links(study, site),
            "charts": _charts(
                figures=figures,
                progress_rows=[(site.code, figures.sdv.verified, figures.sdv.required)],
                target=None,  # a target is the study's, not a site's
            ),
            "study_wide": can(request.user, Action.SDV, study=study, every_site=True),
            "reviewed_sites": list(_reviewed_sites(request.user, study)),
        },
    )


@login_required
def study_dashboard_view(request, study_code: str):
    """The data manager's study: the same figures for every site side by side, their
    sum, and enrolment against the study's target."""
    study = study_for(request.user, study_code)
    if not can(request.user, Action.SDV, study=study, every_site=True):
        # A monitor of some sites (the study's pages link here) goes to the first of them.
        mine = _reviewed_sites(request.user, study).first()
        if mine is None:
            raise PermissionDenied(_("The review dashboards are for monitors and data managers."))
        return redirect("review:site_dashboard", study.code, mine.code)
    sites = Site.objects.filter(study_sites__study=study).order_by("code")
    dashboard = study_dashboard(study, sites, versions=_versions(study))
    rows = [(figures, _links(study, figures.site)) for figures in dashboard.sites]
    return render(
        request,
        "review/dashboard_study.html",
        {
            "study": study,
            "dashboard": dashboard,
            "rows": rows,
            "total": dashboard.total,
            "buckets": QUERY_AGE_LABELS.values(),
            "links": _links(study),
            "charts": _charts(
                figures=dashboard.total,
                progress_rows=[
                    (figures.site.code, figures.sdv.verified, figures.sdv.required)
                    for figures in dashboard.sites
                ],
                target=dashboard.target,
            ),
        },
    )


def _visit_name(versions, visit) -> str:
    try:
        return versions[visit.protocol_version_id].protocol.visit(visit.code).name
    except KeyError:  # a visit the protocol file no longer names
        return ""


@login_required
def overdue_visit_list(request, study_code: str):
    """The visits overdue at the user's sites, the longest overdue first."""
    study = study_for(request.user, study_code)
    sites = _visible_sites(request.user, study)
    today = timezone.localdate()
    visits = overdue_visits(
        Visit.objects.visible_to(request.user).filter(patient__study=study), today=today
    ).select_related("patient__site")
    filterset = OverdueVisitFilter(request.GET or None, queryset=visits, sites=sites)
    page, query = paginate(
        request,
        filterset.qs.order_by("latest_date", "patient__subject_code", "sequence", "pk"),
        size=LIST_PAGE_SIZE,
    )
    versions = _versions(study)
    rows = [
        (visit, _visit_name(versions, visit), (today - visit.latest_date).days) for visit in page
    ]
    return render(
        request,
        "review/overdue_visits.html",
        {
            "study": study,
            "filter": filterset,
            "sites": list(sites),
            "page": page,
            "rows": rows,
            "query": query,
            "today": today,
        },
    )


@login_required
def deviation_list(request, study_code: str):
    """The protocol deviations at the user's sites, the newest first."""
    study = study_for(request.user, study_code)
    sites = _visible_sites(request.user, study)
    deviations = (
        Deviation.objects.visible_to(request.user)
        .filter(patient__study=study)
        .select_related("patient__site", "visit", "recorded_by", "closed_by")
    )
    filterset = DeviationFilter(request.GET or None, queryset=deviations, sites=sites)
    page, query = paginate(
        request, filterset.qs.order_by("-recorded_at", "-pk"), size=LIST_PAGE_SIZE
    )
    return render(
        request,
        "review/deviations.html",
        {
            "study": study,
            "filter": filterset,
            "sites": list(sites),
            "page": page,
            "query": query,
        },
    )
