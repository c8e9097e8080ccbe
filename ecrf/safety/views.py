"""Safety screens: a patient's AE log, an event with its SAE reports, site and study lists.

Objects are read through `visible_to` (another site's event is a 404); writes go to the
services, whose ValidationError becomes a 400 with the message on the page. No screen
here reads the allocation, so no arm can appear on them.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from ecrf.accounts.access import studies_visible_to, study_sites_visible_to
from ecrf.accounts.permissions import Action, actions_for, can
from ecrf.core.errors import StaleVersion
from ecrf.patients.locks import active_lock, lock_message
from ecrf.patients.models import DataLock, Patient
from ecrf.safety import services
from ecrf.safety.forms import (
    AcknowledgeForm,
    AdverseEventForm,
    AuthorityReportedForm,
    DismissAlertForm,
    FollowUpForm,
    InitialReportForm,
)
from ecrf.safety.models import AdverseEvent, LabAlert, SaeReport
from ecrf.safety.selectors import (
    AdverseEventFilter,
    SaeClockFilter,
    adverse_events_for,
    initial_reports_for,
    patient_log,
    sae_rows,
)
from ecrf.studies.models import Site, Study

PAGE_SIZE = 25


def _study(request, study_code: str) -> Study:
    return get_object_or_404(studies_visible_to(request.user), code=study_code)


def _patient(request, study: Study, subject_code: str) -> Patient:
    return get_object_or_404(
        Patient.objects.visible_to(request.user).select_related("site", "study"),
        study=study,
        subject_code=subject_code,
    )


def _event(request, study_code: str, subject_code: str, number: int) -> AdverseEvent:
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
    event = get_object_or_404(
        AdverseEvent.objects.visible_to(request.user), patient=patient, number=number
    )
    event.patient = patient  # already loaded with its site and study
    return event


def _log_url(patient: Patient) -> str:
    return reverse("safety:log", args=[patient.study.code, patient.subject_code])


def _event_url(event: AdverseEvent) -> str:
    patient = event.patient
    return reverse("safety:event", args=[patient.study.code, patient.subject_code, event.number])


# -- a patient's log ---------------------------------------------------------------------------


@login_required
def patient_ae_log(request, study_code: str, subject_code: str):
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
    if not _has_log(patient):
        raise Http404
    return _render_log(request, study, patient, dismiss_form=DismissAlertForm())


def _render_log(request, study: Study, patient: Patient, *, dismiss_form, status: int = 200):
    events, alerts = patient_log(request.user, patient=patient)
    return render(
        request,
        "safety/log.html",
        {
            "study": study,
            "patient": patient,
            "events": events,
            "alerts": alerts,
            "can_record": can(request.user, Action.RECORD_AE, patient=patient),
            "dismiss_form": dismiss_form,
        },
        status=status,
    )


def _has_log(patient: Patient) -> bool:
    return patient.protocol_version.protocol.has_form("adverse_event")


@login_required
@require_http_methods(["GET", "POST"])
def ae_create(request, study_code: str, subject_code: str):
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
    if not _has_log(patient):
        raise Http404
    if not can(request.user, Action.RECORD_AE, patient=patient):
        raise PermissionDenied
    alert = None
    if request.GET.get("alert") or request.POST.get("alert"):
        alert = get_object_or_404(
            LabAlert.objects.visible_to(request.user).open(),
            patient=patient,
            pk=_int(request.GET.get("alert") or request.POST.get("alert")),
        )
    zone = patient.site.timezone
    initial = {"term": _alert_term(alert)} if alert else None
    form = AdverseEventForm(
        request.POST if request.method == "POST" else None, zone=zone, initial=initial
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                event = services.ae_create(
                    patient=patient, by=request.user, values=form.values(), lab_alert=alert
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                event.patient = patient
                messages.success(
                    request,
                    _("%(label)s recorded.") % {"label": event.label}
                    + (
                        " " + _("It is serious: submit the initial report before the deadline.")
                        if event.serious
                        else ""
                    ),
                )
                return redirect(_event_url(event))
        status = 400
    return render(
        request,
        "safety/ae_form.html",
        {"study": study, "patient": patient, "form": form, "alert": alert, "event": None},
        status=status,
    )


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404 from None


def _alert_term(alert: LabAlert) -> str:
    return f"{alert.analyte} {alert.value:g} ({alert.limit})"


@login_required
@require_http_methods(["GET", "POST"])
def ae_edit(request, study_code: str, subject_code: str, number: int):
    event = _event(request, study_code, subject_code, number)
    patient = event.patient
    if not can(request.user, Action.RECORD_AE, patient=patient):
        raise PermissionDenied
    zone = patient.site.timezone
    if request.method == "POST":
        form = AdverseEventForm(request.POST, zone=zone, editing=True, was_serious=event.serious)
        if form.is_valid():
            try:
                services.ae_update(
                    event=event,
                    by=request.user,
                    values=form.values(),
                    expected_version=form.cleaned_data["version"],
                    reason=form.cleaned_data["reason"],
                )
            except StaleVersion as exc:
                return render(
                    request,
                    "crfs/stale.html",
                    {"reload_url": request.path, "label": exc.label},
                    status=409,
                )
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("%(label)s saved.") % {"label": event.label})
                return redirect(_event_url(event))
        status = 400
    else:
        form = AdverseEventForm(
            initial=AdverseEventForm.initial_from(event, zone),
            zone=zone,
            editing=True,
            was_serious=event.serious,
        )
        status = 200
    return render(
        request,
        "safety/ae_form.html",
        {"study": patient.study, "patient": patient, "form": form, "event": event},
        status=status,
    )


@login_required
def ae_detail(request, study_code: str, subject_code: str, number: int):
    event = _event(request, study_code, subject_code, number)
    return _detail(request, event)


def _detail(request, event: AdverseEvent, *, forms=None, status: int = 200):
    patient = event.patient
    user = request.user
    reports = list(event.sae_reports.select_related("submitted_by", "acknowledged_by"))
    initial = next((r for r in reports if r.is_initial), None)
    if initial:
        initial.adverse_event = event
        initial.follow_ups = len(reports) - 1
    rows = sae_rows([initial]) if initial else []
    actions = actions_for(user, patient=patient)
    # Frozen or locked (the casebook or this event): no edit, no report; a lock also stops
    # the sponsor's receipt. A courtesy: the services refuse anyway.
    lock = active_lock(patient=patient, entry=event)
    changes = lock is None
    can_submit = Action.SUBMIT_SAE in actions and changes
    can_ack = Action.ACKNOWLEDGE_SAE in actions and (
        lock is None or lock.kind != DataLock.Kind.LOCK
    )
    zone = patient.site.timezone
    context = {
        "study": patient.study,
        "patient": patient,
        "event": event,
        "reports": reports,
        "initial": initial,
        "row": rows[0] if rows else None,
        "zone": zone,
        "can_record": Action.RECORD_AE in actions and changes,
        "lock_message": lock_message(lock) if lock is not None else "",
        "can_submit": can_submit,
        "can_acknowledge": can_ack,
        "can_read_audit": Action.READ_AUDIT in actions,
        "initial_form": InitialReportForm() if can_submit else None,
        "follow_up_form": FollowUpForm(zone=zone) if can_submit else None,
        "ack_form": AcknowledgeForm() if can_ack else None,
        "authority_form": AuthorityReportedForm() if can_ack else None,
    }
    context.update(forms or {})
    return render(request, "safety/event.html", context, status=status)


def _post_action(request, event, form, form_key, action, success):
    """Run an SAE workflow step; a refusal is a 400 showing why, on the event's page."""
    if form.is_valid():
        try:
            action(form.cleaned_data)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        else:
            messages.success(request, success)
            return redirect(_event_url(event))
    return _detail(request, event, forms={form_key: form}, status=400)


@login_required
@require_POST
def sae_submit(request, study_code: str, subject_code: str, number: int):
    event = _event(request, study_code, subject_code, number)
    if not can(request.user, Action.SUBMIT_SAE, patient=event.patient):
        raise PermissionDenied
    report = event.sae_reports.filter(number=0).first()
    form = InitialReportForm(request.POST)
    if report is None:
        form.is_valid()
        form.add_error(None, _("This event is not serious: there is no SAE report to submit."))
        return _detail(request, event, forms={"initial_form": form}, status=400)
    return _post_action(
        request,
        event,
        form,
        "initial_form",
        lambda data: services.sae_submit_initial(
            report=report,
            by=request.user,
            password=data["password"],
            narrative=data["narrative"],
            request=request,
        ),
        _("Initial SAE report submitted; the sponsor's safety desk is being notified."),
    )


@login_required
@require_POST
def sae_follow_up(request, study_code: str, subject_code: str, number: int):
    event = _event(request, study_code, subject_code, number)
    if not can(request.user, Action.SUBMIT_SAE, patient=event.patient):
        raise PermissionDenied
    form = FollowUpForm(request.POST, zone=event.patient.site.timezone)
    return _post_action(
        request,
        event,
        form,
        "follow_up_form",
        lambda data: services.sae_follow_up(
            event=event,
            by=request.user,
            password=data["password"],
            narrative=data["narrative"],
            aware_at=data.get("aware_at"),
            request=request,
        ),
        _("Follow-up report submitted; the sponsor's safety desk is being notified."),
    )


@login_required
@require_POST
def sae_acknowledge(request, study_code: str, subject_code: str, number: int, report: int):
    event = _event(request, study_code, subject_code, number)
    if not can(request.user, Action.ACKNOWLEDGE_SAE, patient=event.patient):
        raise PermissionDenied
    sae_report = get_object_or_404(
        SaeReport.objects.visible_to(request.user), adverse_event=event, number=report
    )
    return _post_action(
        request,
        event,
        AcknowledgeForm(request.POST),
        "ack_form",
        lambda data: services.sae_acknowledge(
            report=sae_report, by=request.user, sponsor_relatedness=data["sponsor_relatedness"]
        ),
        _("Receipt acknowledged."),
    )


@login_required
@require_POST
def ae_authority_reported(request, study_code: str, subject_code: str, number: int):
    event = _event(request, study_code, subject_code, number)
    if not can(request.user, Action.ACKNOWLEDGE_SAE, patient=event.patient):
        raise PermissionDenied
    return _post_action(
        request,
        event,
        AuthorityReportedForm(request.POST),
        "authority_form",
        lambda data: services.ae_authority_reported(event=event, by=request.user, at=data["at"]),
        _("Report to the authorities recorded."),
    )


@login_required
@require_POST
def lab_alert_dismiss(request, study_code: str, subject_code: str, alert_id: int):
    study = _study(request, study_code)
    patient = _patient(request, study, subject_code)
    alert = get_object_or_404(
        LabAlert.objects.visible_to(request.user), patient=patient, pk=alert_id
    )
    form = DismissAlertForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors["reason"])
        services.lab_alert_dismiss(alert=alert, by=request.user, reason=form.cleaned_data["reason"])
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return _render_log(request, study, patient, dismiss_form=form, status=400)
    messages.success(request, _("Laboratory prompt dismissed."))
    return redirect(_log_url(patient))


# -- lists -------------------------------------------------------------------------------------


def _visible_sites(request, study: Study):
    return Site.objects.filter(
        study_sites__in=study_sites_visible_to(request.user).filter(study=study)
    )


def _page(request, queryset):
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return page, query.urlencode()


@login_required
def site_ae_list(request, study_code: str):
    """Every adverse event the user may see in the study, filterable."""
    study = _study(request, study_code)
    filterset = AdverseEventFilter(
        request.GET or None,
        queryset=adverse_events_for(request.user, study=study),
        sites=_visible_sites(request, study),
    )
    page, query = _page(request, filterset.qs.order_by("-aware_at", "pk"))
    return render(
        request,
        "safety/ae_list.html",
        {"study": study, "filter": filterset, "page": page, "query": query, "now": timezone.now()},
    )


@login_required
def sae_list(request, study_code: str):
    """Serious events with their reporting clocks: the safety desk's screen."""
    study = _study(request, study_code)
    reports = initial_reports_for(request.user, study=study)
    filterset = AdverseEventFilter(
        request.GET or None,
        queryset=AdverseEvent.objects.visible_to(request.user).filter(patient__study=study),
        sites=_visible_sites(request, study),
    )
    clock = SaeClockFilter(request.GET or None, queryset=reports)
    reports = clock.qs.filter(adverse_event__in=filterset.qs.values("pk"))
    page, query = _page(request, reports)
    return render(
        request,
        "safety/sae_list.html",
        {
            "study": study,
            "filter": filterset,
            "clock_filter": clock,
            "page": page,
            "rows": sae_rows(page.object_list),
            "query": query,
        },
    )
