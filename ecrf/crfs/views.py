"""Visit pages and CRF forms for site staff; monitors and data managers read them."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from ecrf.accounts.access import Role, roles_for
from ecrf.core.errors import StaleVersion
from ecrf.crfs.forms import EligibilityForm, crf_form_class
from ecrf.crfs.models import (
    SERUM_CONDITIONS,
    condition_message,
    culture_conditions,
    form_model,
    serum_donor_message,
    serum_donors,
)
from ecrf.crfs.services import (
    FormNotInVisit,
    WarningsPending,
    crf_for_visit,
    crf_save,
    visit_forms,
)
from ecrf.patients.models import Deviation, Patient, Visit
from ecrf.patients.visits import (
    visit_mark_missed,
    visit_order_problem,
    visit_record_date,
    visit_required_forms,
)
from ecrf.studies.models import Study


class VisitDateForm(forms.Form):
    visit_date = forms.DateField(
        label=gettext_lazy("Visit date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    deviation_category = forms.ChoiceField(
        label=gettext_lazy("Deviation category"),
        required=False,
        choices=[("", "—"), *Deviation.Category.choices],
        help_text=gettext_lazy("Only for a date outside the visit window."),
    )
    deviation_reason = forms.CharField(
        label=gettext_lazy("Deviation reason"), required=False, max_length=1000
    )
    version = forms.IntegerField(widget=forms.HiddenInput)


class MissedForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Why was the visit missed?"), max_length=300)
    version = forms.IntegerField(widget=forms.HiddenInput)


def _visit(request, study_code: str, subject_code: str, code: str, repeat: int) -> Visit:
    study = get_object_or_404(Study.objects.visible_to(request.user), code=study_code)
    return get_object_or_404(
        Visit.objects.visible_to(request.user).select_related(
            "patient__site", "patient__study", "patient__protocol_version"
        ),
        patient__study=study,
        patient__subject_code=subject_code,
        code=code,
        repeat=repeat,
    )


def _can_enter(user, patient: Patient) -> bool:
    return bool(roles_for(user, study=patient.study, site=patient.site) & Role.SITE_STAFF)


def _stale(request, url: str, label: str) -> HttpResponse:
    return render(
        request,
        "crfs/stale.html",
        {"reload_url": url, "label": label},
        status=409,
    )


@login_required
@require_http_methods(["GET", "POST"])
def visit_detail(request, study_code, subject_code, code, repeat=1):
    visit = _visit(request, study_code, subject_code, code, repeat)
    patient = visit.patient
    can_enter = _can_enter(request.user, patient)
    date_form = VisitDateForm(
        request.POST if request.method == "POST" and "visit_date" in request.POST else None,
        initial={"visit_date": visit.visit_date, "version": visit.version},
    )
    missed_form = MissedForm(
        request.POST if request.method == "POST" and "reason" in request.POST else None,
        initial={"version": visit.version},
    )
    if request.method == "POST":
        if not can_enter:
            raise PermissionDenied
        try:
            if date_form.is_bound and date_form.is_valid():
                data = date_form.cleaned_data
                visit_record_date(
                    visit=visit,
                    by=request.user,
                    visit_date=data["visit_date"],
                    expected_version=data["version"],
                    deviation_category=data["deviation_category"],
                    deviation_reason=data["deviation_reason"],
                )
                messages.success(request, _("Visit %s dated.") % visit.code)
                return redirect(request.path)
            if missed_form.is_bound and missed_form.is_valid():
                visit_mark_missed(
                    visit=visit,
                    by=request.user,
                    reason=missed_form.cleaned_data["reason"],
                    expected_version=missed_form.cleaned_data["version"],
                )
                messages.success(request, _("Visit %s declared missed.") % visit.code)
                return redirect("patients:detail", study_code, subject_code)
        except StaleVersion as exc:
            return _stale(request, request.path, exc.label)
        except ValidationError as exc:
            form = date_form if date_form.is_bound else missed_form
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        if not (date_form.is_bound or missed_form.is_bound):
            return HttpResponse(_("Nothing to save in this request."), status=400)
    required = set(visit_required_forms(visit))
    protocol = patient.protocol_version.protocol
    rows = []
    for code_ in visit_forms(visit):
        spec = protocol.form(code_)
        model = form_model(code_)
        instances = list(model.objects.filter(visit=visit).order_by("pk"))
        # A repeatable form says which of its instances (culture conditions) are still due.
        lacks = model.visit_lacks(visit) if spec.repeatable and code_ in required else []
        rows.append((code_, spec.label, spec.repeatable, instances, code_ in required, lacks))
    return render(
        request,
        "crfs/visit.html",
        {
            "study": patient.study,
            "patient": patient,
            "visit": visit,
            "rows": rows,
            "date_form": date_form,
            "missed_form": missed_form,
            "can_enter": can_enter,
            "order_problem": visit_order_problem(visit),
            "deviations": visit.deviations.all(),
        },
    )


def _posted_stale(request, instance) -> bool:
    """A POST made from another version than the current one.

    Checked before the answers, so the second of two people is told at once (and not first
    asked for a reason for change on a form they never saw saved); crf_save checks again
    under its row lock.
    """
    try:
        posted = int(request.POST.get("version", ""))
    except ValueError:
        return False  # missing or not a number: the form (or crf_save) answers
    return posted != (instance.version if instance is not None else 0)


def _crf_form(request, visit: Visit, form_code: str, instance, warnings=()):
    patient = visit.patient
    data = request.POST if request.method == "POST" else None
    needs_reason = instance is not None
    if form_code == "eligibility":
        criteria = patient.protocol_version.protocol.eligibility_for(patient.group or None)
        form = EligibilityForm(data, criteria=criteria, instance=instance)
    else:
        form = crf_form_class(form_model(form_code))(data, instance=instance)
    if "condition" in form.fields:
        # Only the conditions of the participant's group (the protocol's laboratory
        # section), and a refusal that names them; a stored one stays shown to be corrected.
        allowed = set(culture_conditions(patient)) | {getattr(instance, "condition", "")}
        field = form.fields["condition"]
        field.choices = [(v, label) for v, label in field.choices if v == "" or v in allowed]
        field.error_messages["invalid_choice"] = condition_message(patient).replace("%", "%%")
    if "serum_donor" in form.fields:
        if not set(SERUM_CONDITIONS) & set(culture_conditions(patient)):
            # The group is never cultured in another participant's serum.
            del form.fields["serum_donor"]
        else:
            # SSc participants of the same study whom the user may see: never a list of
            # every patient of the installation, nor the patient themself.
            field = form.fields["serum_donor"]
            field.queryset = (
                Patient.objects.visible_to(request.user)
                .filter(pk__in=serum_donors(patient).values("pk"))
                .order_by("subject_code")
            )
            field.error_messages["invalid_choice"] = serum_donor_message(patient).replace("%", "%%")
    model = form_model(form_code)
    if instance is None and data is None and hasattr(model, "initial_values"):
        # The kit the patient was allocated (the number only, never the arm).
        form.initial.update(model.initial_values(patient))
    form.setup_crf(form_code=form_code, needs_reason=needs_reason, warnings=warnings)
    if data is None:
        form.fields["version"].initial = instance.version if instance else 0
    return form


@login_required
@require_http_methods(["GET", "POST"])
def crf_edit(request, study_code, subject_code, code, repeat, form_code, instance_id=None):
    visit = _visit(request, study_code, subject_code, code, repeat)
    patient = visit.patient
    try:
        instance = crf_for_visit(visit=visit, form_code=form_code, instance_id=instance_id)
    except (FormNotInVisit, KeyError):
        raise Http404 from None
    can_enter = _can_enter(request.user, patient)
    form = _crf_form(request, visit, form_code, instance)
    if request.method == "POST":
        if not can_enter:
            raise PermissionDenied
        if _posted_stale(request, instance):
            return _stale(request, request.path, str(form_model(form_code)._meta.verbose_name))
        if form.is_valid():
            try:
                crf_save(
                    visit=visit,
                    form_code=form_code,
                    values=form.values(),
                    by=request.user,
                    expected_version=form.cleaned_data.get("version"),
                    reason=form.cleaned_data.get("reason", ""),
                    confirmed=form.confirmed_warnings(),
                    instance_id=instance_id,
                )
            except StaleVersion as exc:
                return _stale(request, request.path, exc.label)
            except FormNotInVisit:
                raise Http404 from None
            except WarningsPending as exc:
                form = _crf_form(request, visit, form_code, instance, warnings=exc.warnings)
                form.is_valid()
                for warning in exc.warnings:
                    form.add_error(f"confirm_{warning.code}", warning.message)
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    for field, errors in exc.error_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, exc)
            else:
                messages.success(request, _("Form saved."))
                return redirect("crfs:visit", study_code, subject_code, code, repeat)
    model = form_model(form_code)
    return render(
        request,
        "crfs/form.html",
        {
            "study": patient.study,
            "patient": patient,
            "visit": visit,
            "form": form,
            "form_code": form_code,
            "label": dict((f.code, f.label) for f in patient.protocol_version.protocol.forms).get(
                form_code, form_code
            ),
            "instance": instance,
            "can_enter": can_enter,
            "live_fields": getattr(model, "LIVE_TOTAL", ()),
            "preview_url": reverse(
                "crfs:preview", args=[study_code, subject_code, code, repeat, form_code]
            ),
        },
    )


@login_required
@require_POST
def crf_preview(request, study_code, subject_code, code, repeat, form_code):
    """The derived values (totals, bands, points) for the answers typed so far (htmx)."""
    visit = _visit(request, study_code, subject_code, code, repeat)
    try:
        crf_for_visit(visit=visit, form_code=form_code)
    except (FormNotInVisit, KeyError):
        raise Http404 from None
    model = form_model(form_code)
    live = getattr(model, "LIVE_TOTAL", ())
    form = crf_form_class(model)(request.POST)
    form.setup_crf(form_code=form_code, needs_reason=False)
    form.is_valid()
    probe = model()
    for name in form.fields:
        if name in form.cleaned_data and hasattr(probe, name):
            setattr(probe, name, form.cleaned_data[name])
    try:
        probe.compute_derived()
        values = [(model._meta.get_field(name).verbose_name, getattr(probe, name)) for name in live]
        problem = None
    except ValueError as exc:  # an input the score refuses (ScoringInputError) is shown
        values, problem = [], str(exc)
    return render(request, "crfs/_live.html", {"values": values, "problem": problem})
