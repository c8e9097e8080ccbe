from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from ecrf.accounts.access import Role, can_see_allocation, roles_for, scope
from ecrf.audit.selectors import patient_audit_trail
from ecrf.patients.filters import PatientFilter
from ecrf.patients.forms import PatientCreateForm
from ecrf.patients.models import Patient
from ecrf.patients.services import patient_create as create_patient
from ecrf.studies.models import Site, Study
from ecrf.studies.schedule import schedule_for

PAGE_SIZE = 25


def _study(request, study_code: str) -> Study:
    return get_object_or_404(Study.objects.visible_to(request.user), code=study_code)


def _patient(request, study: Study, subject_code: str) -> Patient:
    return get_object_or_404(
        Patient.objects.visible_to(request.user).select_related("site", "protocol_version"),
        study=study,
        subject_code=subject_code,
    )


def _staff_sites(user, study: Study):
    """Sites where the user may screen patients in this study."""
    return Site.objects.filter(
        scope(user).site_filter("study_sites__study_id", "id", roles=Role.SITE_STAFF),
        study_sites__study=study,
        study_sites__active=True,
    ).distinct()


@login_required
def patient_list(request, study_code: str):
    study = _study(request, study_code)
    sites = Site.objects.filter(study_sites__in=study.study_sites.visible_to(request.user))
    patients = Patient.objects.visible_to(request.user).filter(study=study).select_related("site")
    filterset = PatientFilter(request.GET or None, queryset=patients, sites=sites)
    page = Paginator(filterset.qs.order_by("subject_code"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "patients/list.html",
        {
            "study": study,
            "filter": filterset,
            "page": page,
            "query": query.urlencode(),
            "can_create": _staff_sites(request.user, study).exists(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def patient_create(request, study_code: str):
    study = _study(request, study_code)
    sites = _staff_sites(request.user, study)
    if not sites.exists():
        raise PermissionDenied
    protocol = study.current_protocol.protocol
    groups = [(g.code, f"{g.code} – {g.label}") for g in protocol.groups]
    data = request.POST if request.method == "POST" else None
    form = PatientCreateForm(data, sites=sites, groups=groups)
    if request.method == "POST" and form.is_valid():
        try:
            patient = create_patient(
                study=study,
                site=form.cleaned_data["site"],
                by=request.user,
                screening_date=form.cleaned_data["screening_date"],
                group=form.cleaned_data.get("group", ""),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, _("Patient %(code)s screened.") % {"code": patient.subject_code}
            )
            return redirect("patients:detail", study.code, patient.subject_code)
    return render(request, "patients/create.html", {"study": study, "form": form})


@login_required
def patient_detail(request, study_code: str, subject_code: str):
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
    protocol = patient.protocol_version.protocol
    schedule = schedule_for(protocol, patient.day0_date) if patient.day0_date else []
    roles = roles_for(request.user, study=study, site=patient.site)
    allocation = None
    if protocol.arms:
        allocation = getattr(patient, "allocation", None) if patient.status != "screening" else None
    return render(
        request,
        "patients/detail.html",
        {
            "study": study,
            "patient": patient,
            "protocol": protocol,
            "schedule": schedule,
            "allocation": allocation,
            "show_arm": allocation is not None and can_see_allocation(request.user, study=study),
            "can_read_audit": bool(roles & Role.AUDIT_READERS),
        },
    )


@login_required
def patient_audit(request, study_code: str, subject_code: str):
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
    if not roles_for(request.user, study=study, site=patient.site) & Role.AUDIT_READERS:
        raise PermissionDenied
    entries = patient_audit_trail(
        patient=patient, unblinded=can_see_allocation(request.user, study=study)
    )
    return render(
        request,
        "audit/patient_trail.html",
        {"study": study, "patient": patient, "entries": entries},
    )
