from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ecrf.accounts.access import scope, studies_visible_to, study_sites_visible_to
from ecrf.accounts.permissions import Action, allowed_actions, can, roles_allowed
from ecrf.patients.filters import PatientFilter
from ecrf.patients.forms import EndOfStudyForm, PatientCreateForm, PlanInclusionForm
from ecrf.patients.models import Patient
from ecrf.patients.randomisation import can_manage_allocation_lists
from ecrf.patients.selectors import patient_for, study_for
from ecrf.patients.services import patient_create as create_patient
from ecrf.patients.services import patient_end, patient_plan_inclusion
from ecrf.patients.visits import visit_add_unscheduled, with_next_visit
from ecrf.studies.models import Site, Study

PAGE_SIZE = 25


@login_required
def study_chooser(request):
    """The studies the user belongs to, their roles, and how many patients they can see.

    Served at the studies app's URL (studies:chooser); here because it counts patients.
    """
    studies = list(studies_visible_to(request.user))
    counts = dict(
        Patient.objects.visible_to(request.user)
        .values_list("study_id")
        .annotate(n=Count("id"))
        .values_list("study_id", "n")
    )
    memberships = {}
    for membership in request.user.memberships.filter(active=True).select_related("site"):
        memberships.setdefault(membership.study_id, []).append(membership)
    rows = [(study, memberships.get(study.pk, []), counts.get(study.pk, 0)) for study in studies]
    # The administrator's way to the study unblinding (all-site roles: the table, no query).
    unblindable = {
        study.pk
        for study in studies
        if study.blinded
        and Action.UNBLIND_STUDY
        in allowed_actions({m.role for m in memberships.get(study.pk, []) if m.site_id is None})
    }
    return render(request, "studies/chooser.html", {"rows": rows, "unblindable": unblindable})


def _staff_sites(user, study: Study):
    """Sites where the user may screen patients in this study."""
    return Site.objects.filter(
        scope(user).site_filter("study_sites__study_id", "id", roles=roles_allowed(Action.ENROL)),
        study_sites__study=study,
        study_sites__active=True,
    ).distinct()


@login_required
def patient_list(request, study_code: str):
    study = study_for(request.user, study_code)
    sites = Site.objects.filter(
        study_sites__in=study_sites_visible_to(request.user).filter(study=study)
    )
    patients = with_next_visit(
        Patient.objects.visible_to(request.user).filter(study=study).select_related("site")
    )
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
            "can_manage_lists": bool(study.current_protocol.protocol.arms)
            and can_manage_allocation_lists(request.user, study=study),
            # The review's SDV matrix, for the monitors and data managers of a site.
            "can_sdv": can(request.user, Action.SDV, study=study),
            "can_manage_users": can(
                request.user, Action.MANAGE_USERS, study=study, every_site=True
            ),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def patient_create(request, study_code: str):
    study = study_for(request.user, study_code)
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


def patient_action(request, study_code, subject_code, form_class, action, success):
    """Run a patient service from a POSTed form; errors are shown on the casebook.

    Also runs the enrolment and screen failure of `ecrf.crfs.views_patient`.
    """
    study = study_for(request.user, study_code)
    patient = patient_for(request.user, study, subject_code)
    if not can(request.user, Action.ENROL, patient=patient):
        raise PermissionDenied
    form = form_class(request.POST)
    if form.is_valid():
        try:
            action(patient, form.cleaned_data)
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, success % {"code": patient.subject_code})
    else:
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            messages.error(request, f"{label}: {' '.join(errors)}" if label else " ".join(errors))
    return redirect("patients:detail", study.code, patient.subject_code)


@login_required
@require_POST
def patient_end_view(request, study_code: str, subject_code: str):
    return patient_action(
        request,
        study_code,
        subject_code,
        EndOfStudyForm,
        lambda patient, data: patient_end(patient=patient, by=request.user, **data),
        _("End of study of %(code)s recorded; the remaining visits are closed."),
    )


@login_required
@require_POST
def patient_plan_inclusion_view(request, study_code: str, subject_code: str):
    return patient_action(
        request,
        study_code,
        subject_code,
        PlanInclusionForm,
        lambda patient, data: patient_plan_inclusion(
            patient=patient, by=request.user, planned_date=data["planned_day0_date"]
        ),
        _("Planned inclusion date of %(code)s saved.")
        if request.POST.get("planned_day0_date", "").strip()
        else _("Planned inclusion date of %(code)s cleared."),
    )


@login_required
@require_POST
def visit_add_unscheduled_view(request, study_code: str, subject_code: str):
    study = study_for(request.user, study_code)
    patient = patient_for(request.user, study, subject_code)
    if not can(request.user, Action.ENTER, patient=patient):
        raise PermissionDenied
    try:
        visit = visit_add_unscheduled(patient=patient, by=request.user)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("patients:detail", study.code, patient.subject_code)
    return redirect("crfs:visit", study.code, patient.subject_code, visit.code, visit.repeat)
