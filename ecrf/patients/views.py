from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ecrf.accounts.access import can_see_allocation, scope
from ecrf.accounts.permissions import Action, actions_for, can, roles_allowed
from ecrf.audit.selectors import patient_audit_trail
from ecrf.patients.casebook import casebook, visit_timing
from ecrf.patients.filters import PatientFilter
from ecrf.patients.forms import EndOfStudyForm, EnrolForm, PatientCreateForm, ScreenFailForm
from ecrf.patients.models import Allocation, Patient, Visit
from ecrf.patients.randomisation import can_manage_allocation_lists
from ecrf.patients.services import patient_create as create_patient
from ecrf.patients.services import patient_end, patient_enrol, patient_screen_fail
from ecrf.patients.unblinding import is_unblinded
from ecrf.patients.visits import visit_add_unscheduled, with_next_visit
from ecrf.safety.models import AdverseEvent, LabAlert, SaeReport
from ecrf.studies.models import Site, Study

UPCOMING_DAYS = 14
# Most urgent first: a site with hundreds of visits due reads them a page at a time.
UPCOMING_PAGE_SIZE = 50

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
        scope(user).site_filter("study_sites__study_id", "id", roles=roles_allowed(Action.ENROL)),
        study_sites__study=study,
        study_sites__active=True,
    ).distinct()


@login_required
def patient_list(request, study_code: str):
    study = _study(request, study_code)
    sites = Site.objects.filter(study_sites__in=study.study_sites.visible_to(request.user))
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
    """The casebook: visits × forms with status and windows, deviations, the mRSS chart."""
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
    protocol = patient.protocol_version.protocol
    actions = actions_for(request.user, patient=patient)
    allocation = None
    if protocol.arms:
        allocation = Allocation.objects.visible_to(request.user).filter(patient=patient).first()
    manages = Action.ENROL in actions
    return render(
        request,
        "patients/detail.html",
        {
            "study": study,
            "patient": patient,
            "protocol": protocol,
            "allocation": allocation,
            "show_arm": allocation is not None and can_see_allocation(request.user, study=study),
            "can_read_audit": Action.READ_AUDIT in actions,
            "can_enter": Action.ENTER in actions,
            "deviations": patient.deviations.open().select_related("visit"),
            "enrol_form": EnrolForm(initial={"day0_date": timezone.localdate()})
            if manages and patient.status == Patient.Status.SCREENING
            else None,
            "screen_fail_form": ScreenFailForm()
            if manages and patient.status == Patient.Status.SCREENING
            else None,
            "end_form": EndOfStudyForm(initial={"end_date": timezone.localdate()})
            if manages and patient.status == Patient.Status.ENROLLED
            else None,
            "has_unscheduled": any(v.kind == "unscheduled" for v in protocol.visits),
            "can_unblind": allocation is not None and Action.UNBLIND in actions,
            "unblinded": allocation is not None and is_unblinded(patient),
            **casebook(patient),
            **_safety_summary(request.user, patient, protocol),
        },
    )


def _safety_summary(user, patient: Patient, protocol) -> dict:
    """The AE log's lines for the casebook (two queries), when the protocol keeps one."""
    if not protocol.has_form("adverse_event"):
        return {"has_ae_log": False}
    events = list(
        AdverseEvent.objects.visible_to(user)
        .filter(patient=patient)
        .annotate(
            initial_submitted_at=Subquery(
                SaeReport.objects.filter(adverse_event=OuterRef("pk"), number=0).values(
                    "submitted_at"
                )[:1]
            )
        )
        .order_by("number")
    )
    return {
        "has_ae_log": True,
        "adverse_events": events,
        "open_lab_alerts": LabAlert.objects.visible_to(user).filter(patient=patient).open().count(),
    }


def _patient_action(request, study_code, subject_code, form_class, action, success):
    """Run a patient service from a POSTed form; errors are shown on the casebook."""
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
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
def patient_enrol_view(request, study_code: str, subject_code: str):
    return _patient_action(
        request,
        study_code,
        subject_code,
        EnrolForm,
        lambda patient, data: patient_enrol(
            patient=patient, by=request.user, day0_date=data["day0_date"]
        ),
        _("Patient %(code)s enrolled."),
    )


@login_required
@require_POST
def patient_screen_fail_view(request, study_code: str, subject_code: str):
    return _patient_action(
        request,
        study_code,
        subject_code,
        ScreenFailForm,
        lambda patient, data: patient_screen_fail(
            patient=patient, by=request.user, reasons=data["reasons"]
        ),
        _("Screen failure of %(code)s recorded."),
    )


@login_required
@require_POST
def patient_end_view(request, study_code: str, subject_code: str):
    return _patient_action(
        request,
        study_code,
        subject_code,
        EndOfStudyForm,
        lambda patient, data: patient_end(patient=patient, by=request.user, **data),
        _("End of study of %(code)s recorded; the remaining visits are closed."),
    )


@login_required
@require_POST
def visit_add_unscheduled_view(request, study_code: str, subject_code: str):
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
    if not can(request.user, Action.ENTER, patient=patient):
        raise PermissionDenied
    try:
        visit = visit_add_unscheduled(patient=patient, by=request.user)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("patients:detail", study.code, patient.subject_code)
    return redirect("crfs:visit", study.code, patient.subject_code, visit.code, visit.repeat)


@login_required
def upcoming_visits(request, study_code: str):
    """Visits due soon or overdue at the user's sites, most urgent first."""
    study = _study(request, study_code)
    today = timezone.localdate()
    visits = (
        Visit.objects.visible_to(request.user)
        .filter(
            patient__study=study,
            patient__status=Patient.Status.ENROLLED,
            status__in=[Visit.Status.PLANNED, Visit.Status.IN_PROGRESS],
            earliest_date__isnull=False,
            earliest_date__lte=today + timedelta(days=UPCOMING_DAYS),
        )
        .select_related("patient__site")
        .order_by("latest_date", "patient__subject_code", "pk")
    )
    page = Paginator(visits, UPCOMING_PAGE_SIZE).get_page(request.GET.get("page"))
    # (visit, days left in its window or None, days its data entry has been pending or None)
    rows = [(visit, *visit_timing(visit, today)) for visit in page]
    return render(
        request,
        "patients/upcoming.html",
        {
            "study": study,
            "rows": rows,
            "page": page,
            "query": "",
            "today": today,
            "horizon": UPCOMING_DAYS,
        },
    )


@login_required
def patient_audit(request, study_code: str, subject_code: str):
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
    if not can(request.user, Action.READ_AUDIT, patient=patient):
        raise PermissionDenied
    entries = patient_audit_trail(
        patient=patient, unblinded=can_see_allocation(request.user, study=study)
    )
    return render(
        request,
        "audit/patient_trail.html",
        {"study": study, "patient": patient, "entries": entries, "skipped": entries.skipped},
    )
