"""Review pages: the SDV matrix per site and the verification of a visit or a form."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from ecrf.accounts.access import scope
from ecrf.accounts.permissions import Action, actions_for, can, roles_allowed
from ecrf.core.errors import StaleVersion
from ecrf.patients.filters import PatientFilter
from ecrf.patients.models import FormIndexEntry, Patient, Visit
from ecrf.patients.selectors import study_for
from ecrf.review.matrix import matrix_columns, sdv_backlog, sdv_matrix
from ecrf.review.models import SdvMark
from ecrf.review.plan import sdv_required, sdv_sampled
from ecrf.review.queries import entry_threads
from ecrf.review.sdv import (
    WHOLE,
    entry_label,
    entry_model,
    entry_verified_fields,
    field_label,
    sdv_fields,
    sdv_mark,
    sdv_mark_visit,
    sdv_reset_fields,
)
from ecrf.review.states import cell_state
from ecrf.studies.models import Site, StudySite

MATRIX_PAGE_SIZE = 25


def _reviewable(user):
    """Where the user may verify: the sites of their monitor or data manager roles."""
    return scope(user).site_filter("study_id", "site_id", roles=roles_allowed(Action.SDV))


@login_required
def matrix(request, study_code: str):
    """Patients × visits of the sites the user verifies, each cell the forms' states, with
    the SDV backlog (only what the plan requires) and a bulk verification per visit."""
    study = study_for(request.user, study_code)
    if not can(request.user, Action.SDV, study=study):
        raise PermissionDenied(_("Only monitors and data managers verify source data."))
    versions = {version.pk: version for version in study.protocol_versions.all()}
    current = max(versions.values(), key=lambda version: version.loaded_at)
    sites = Site.objects.filter(
        study_sites__in=StudySite.objects.filter(_reviewable(request.user), study=study)
    ).order_by("code")
    patients = (
        Patient.objects.visible_to(request.user)
        .filter(_reviewable(request.user), study=study)
        .select_related("site", "protocol_version")
    )
    filterset = PatientFilter(request.GET or None, queryset=patients, sites=sites)
    page = Paginator(filterset.qs.order_by("site__code", "subject_code"), MATRIX_PAGE_SIZE)
    page = page.get_page(request.GET.get("page"))
    for patient in page:
        patient.protocol_version = versions[patient.protocol_version_id]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "review/matrix.html",
        {
            "study": study,
            "filter": filterset,
            "sites": list(sites),
            "page": page,
            "query": query.urlencode(),
            "columns": matrix_columns(current.protocol),
            "rows": sdv_matrix(list(page)),
            "backlog": sdv_backlog(filterset.qs, versions=versions),
            "plan": current.protocol.sdv,
            "always": [current.protocol.form_label(code) for code in current.protocol.sdv.always],
        },
    )


def _next_url(request, fallback: str) -> str:
    url = request.POST.get("next", "")
    if url and url_has_allowed_host_and_scheme(url, {request.get_host()}, request.is_secure()):
        return url
    return fallback


def _parse_versions(raw: str) -> dict[int, int] | None:
    """The "entry:version,..." a page posted (None: missing, or not that shape)."""
    versions = {}
    for item in filter(None, raw.split(",")):
        entry, _sep, version = item.partition(":")
        if not (entry.isdigit() and version.isdigit()):
            return None
        versions[int(entry)] = int(version)
    return versions


def _refused(request, exc: ValidationError | PermissionDenied | StaleVersion) -> None:
    if isinstance(exc, StaleVersion):
        messages.error(
            request,
            _("%(what)s was changed since you opened the page: read it again before verifying.")
            % {"what": exc.label},
        )
    elif isinstance(exc, ValidationError):
        messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, str(exc) or _("You may not verify these data."))


@login_required
@require_POST
def verify_visit(request, study_code: str, visit_id: int):
    """Bulk SDV of a visit: every form the plan requires and that is complete."""
    study = study_for(request.user, study_code)
    visit = get_object_or_404(
        Visit.objects.visible_to(request.user).select_related("patient__protocol_version"),
        patient__study=study,
        pk=visit_id,
    )
    fallback = reverse("review:matrix", args=[study.code])
    expected = _parse_versions(request.POST.get("versions", ""))
    if expected is None:
        messages.error(request, _("This request does not say which forms you saw."))
        return redirect(_next_url(request, fallback))
    try:
        verified = sdv_mark_visit(by=request.user, visit=visit, expected_versions=expected)
    except (ValidationError, PermissionDenied, StaleVersion) as exc:
        _refused(request, exc)
    else:
        messages.success(
            request,
            ngettext(
                "%(count)d form of %(subject)s, visit %(visit)s, verified.",
                "%(count)d forms of %(subject)s, visit %(visit)s, verified.",
                len(verified),
            )
            % {"count": len(verified), "subject": visit.patient.subject_code, "visit": visit.code},
        )
    return redirect(_next_url(request, fallback))


# -- one form --------------------------------------------------------------------------------


def _value_shown(instance, name: str) -> str:
    if name == WHOLE:
        return ""
    field = instance._meta.get_field(name)
    value = getattr(instance, name)
    if value is None or value == "":
        return "—"
    if field.choices:
        return str(getattr(instance, f"get_{name}_display")())
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, date | datetime | Decimal | int | float):
        return str(formats.localize(value))
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _entry_for(request, study, entry_id: int) -> FormIndexEntry:
    return get_object_or_404(
        FormIndexEntry.objects.visible_to(request.user).select_related(
            "patient__site", "patient__protocol_version", "visit", "verified_by", "sdv_reset_by"
        ),
        patient__study=study,
        pk=entry_id,
    )


@login_required
@require_http_methods(["GET", "POST"])
def verify_form(request, study_code: str, entry_id: int):
    """One form instance: its fields with their SDV state; verify it whole or by field."""
    study = study_for(request.user, study_code)
    entry = _entry_for(request, study, entry_id)
    patient = entry.patient
    here = reverse("review:form", args=[study.code, entry.pk])
    if request.method == "POST":
        fields = request.POST.getlist("field") if "fields" in request.POST else None
        try:
            version = int(request.POST.get("version", ""))
        except ValueError:
            version = -1  # a page that did not say which version it showed
        try:
            sdv_mark(by=request.user, entry=entry, fields=fields, expected_version=version)
        except (ValidationError, PermissionDenied, StaleVersion) as exc:
            _refused(request, exc)
        else:
            messages.success(
                request, _("%(form)s verified.") % {"form": entry_label(patient, entry)}
            )
        return redirect(_next_url(request, here))
    instance = entry_model(entry.form_code).objects.filter(pk=entry.object_id).first()
    names = sdv_fields(entry.form_code)
    marks = list(SdvMark.objects.filter(entry=entry).select_related("by").order_by("pk"))
    verified = entry_verified_fields(entry, marks)
    required = sdv_required(patient, entry.form_code, entry)
    actions = actions_for(request.user, patient=patient)
    rows = [
        {
            "name": name,
            "label": field_label(entry.form_code, name),
            "value": _value_shown(instance, name) if instance is not None else "",
            "verified": name in verified,
        }
        for name in names
    ]
    return render(
        request,
        "review/form.html",
        {
            "study": study,
            "patient": patient,
            "entry": entry,
            "label": entry_label(patient, entry),
            "rows": rows,
            "by_field": names != (WHOLE,),
            "history": [(mark, field_label(entry.form_code, mark.field)) for mark in marks],
            "reset_fields": [field_label(entry.form_code, n) for n in sdv_reset_fields(entry)],
            "state": cell_state(entry, required=required),
            "required": required,
            "sampled": sdv_sampled(patient),
            "can_sdv": Action.SDV in actions,
            "can_view_visit": entry.visit_id is not None,
            "can_raise": Action.RAISE_QUERY in actions,
            "fields": [(name, field_label(entry.form_code, name)) for name in names if name],
            "queries": entry_threads(entry),
        },
    )
